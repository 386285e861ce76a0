import type { GatewayRow } from '../storage/types.js';
import type { SharedPresenceEntry } from './shared-state.js';

/**
 * One gateway's shared presence (Redis, config `redis`) as its reader got it: the entry (fields
 * absent: nothing recorded); 'unavailable' when Redis is configured and did not answer; undefined
 * when no Redis is configured.
 */
export type SharedRead = SharedPresenceEntry | 'unavailable' | undefined;

/** What the asking relay instance saw itself (presence.ts); the operator CLI is no instance and saw nothing. */
export interface InstanceView {
  /** Undefined: this instance has not seen the gateway's connection or status. */
  online?: boolean | undefined;
  lastSeen?: string | undefined;
  /** This instance holds the gateway's connection (embedded broker). */
  holds?: boolean | undefined;
}

/** A gateway's presence as shown to people: GraphQL `Gateway.online`/`lastSeen`, `gateways list`. */
export interface ShownPresence {
  online: boolean;
  lastSeen: string | null;
  /**
   * False when Redis is configured and did not answer: `online` is then the asker's own view or
   * the stored row, and the row may be stale (a relay killed without a clean stop never wrote its
   * gateways' "offline", redis-state.ts on liveness). GraphQL shows it all the same (`online:
   * Boolean!`, relay/src/graphql/schema.ts; the serving instance's view is right for the
   * connections it holds); `gateways list`, which holds none, prints "unknown" (cli/gateways.ts).
   */
  known: boolean;
}

/** The later of two ISO times (undefined when both are). */
export const later = (a: string | undefined, b: string | undefined): string | undefined => (a === undefined ? b : b === undefined ? a : Date.parse(a) >= Date.parse(b) ? a : b);

/**
 * The one rule for a gateway's presence, whoever shows it (GraphQL through presence.ts `shown`,
 * `gateways list` through cli/gateways.ts), so the dashboard and the operator never disagree:
 * 1. the shared presence when Redis answered: any instance's status, offline once the instance
 *    holding the connection is gone (its liveness key lapsed, redis-state.ts `readPresence`),
 *    and the latest event on any instance;
 * 2. else the asker's own view (without Redis, one instance's memory is the whole truth);
 * 3. else the stored row (gateways.online/last_seen, written through the storage queue).
 * A hash without `online` (Redis lost its data, and an event wrote lastSeen alone) tells no
 * status: an instance's "offline" would then only mean it does not hold the connection, while
 * another may (it re-asserts it within a heartbeat, redis-state.ts HOLD_LUA). Meanwhile only a
 * connection held by the asker answers; else the stored row does.
 */
export function shownPresence(row: Pick<GatewayRow, 'online' | 'lastSeen'>, shared: SharedRead, own: InstanceView = {}): ShownPresence {
  if (shared === undefined || shared === 'unavailable') return { online: own.online ?? row.online, lastSeen: own.lastSeen ?? row.lastSeen, known: shared === undefined };
  return {
    online: shared.online ?? (own.holds === true ? true : undefined) ?? row.online,
    lastSeen: later(shared.lastSeen, own.lastSeen) ?? row.lastSeen,
    known: true,
  };
}
