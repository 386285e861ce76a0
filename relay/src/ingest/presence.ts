import type { Logger } from '@tu/shared';
import type { GatewayRow } from '../storage/types.js';
import type { SharedPresence, SharedPresenceEntry } from './shared-state.js';
import { later, shownPresence, type ShownPresence } from './shown-presence.js';
import type { StorageQueue } from './storage-queue.js';

/** How often an event's "last seen" is written to storage per gateway, at most (default). */
export const LAST_SEEN_PERSIST_MS = 30_000;
/** How often an event's "last seen" is written to shared presence per gateway and instance, at most (default). */
export const LAST_SEEN_SHARE_MS = 1000;

/**
 * Gateway online/offline from the ingress: connection counts (embedded broker) or the retained
 * status topic and last will (external broker). Kept in memory for this instance and written to
 * storage (gateways.online/last_seen) through the storage queue, which keeps the latest update
 * per gateway until written (storage-queue.ts `presence`: never waiting for room among the events).
 *
 * "Last seen" also moves on every accepted event (`seen`): in memory each time, in storage at
 * most once per `persistEveryMs` per gateway, so a busy gateway costs no database write per event.
 *
 * With `shared` (Redis, config `redis`), presence also goes to the state every instance shares
 * (redis-state.ts), and `shown` (GraphQL) answers from there: behind a clustered broker any
 * instance may receive a gateway's status or events, so this instance's memory is only its own
 * view. A status is kept with its time, and an older status never replaces a newer one, here and
 * there. Without `shared`, one instance is the whole truth, as before.
 */
export class Presence {
  #connections = new Map<string, number>();
  /** Gateways whose connection or status this instance has seen (so it can say "offline"). */
  #statusKnown = new Set<string>();
  /** Time (ms) of the newest status this instance applied per gateway: an older one is ignored. */
  #statusAt = new Map<string, number>();
  #lastSeen = new Map<string, string>();
  /** When each gateway's presence was last queued for storage (ms, injected clock). */
  #persistedAt = new Map<string, number>();
  /** When each gateway's "last seen" was last written to shared presence by `seen` (ms). */
  #sharedAt = new Map<string, number>();
  /** Shared reads of the current turn of the event loop: a gateway's online and lastSeen fields ask once. */
  #reads = new Map<string, Promise<SharedPresenceEntry | 'unavailable'>>();
  #lastSharedErrorLog = 0;

  /** `authoritative`: this instance sees every gateway connection (embedded ingress), so unseen = offline. */
  constructor(
    private readonly queue: Pick<StorageQueue, 'presence'>,
    private readonly opts: { authoritative: boolean; now?: () => Date; persistEveryMs?: number; shared?: SharedPresence; shareEveryMs?: number; logger?: Logger },
  ) {}

  connected(gatewayId: string): void {
    const n = (this.#connections.get(gatewayId) ?? 0) + 1;
    this.#connections.set(gatewayId, n);
    if (n === 1) this.#write(gatewayId, true, this.#now(), true);
  }

  disconnected(gatewayId: string): void {
    const n = (this.#connections.get(gatewayId) ?? 1) - 1;
    if (n <= 0) {
      this.#connections.delete(gatewayId);
      this.#write(gatewayId, false, this.#now(), true);
    } else this.#connections.set(gatewayId, n);
  }

  /**
   * External mode: the status a gateway (or its last will) published, as of `at` (default: now;
   * an ingress that knows when the broker took the message passes that). A status older than one
   * already applied changes nothing.
   */
  status(gatewayId: string, online: boolean, at: Date = this.#now()): void {
    if (at.getTime() < (this.#statusAt.get(gatewayId) ?? -Infinity)) return;
    if (online) this.#connections.set(gatewayId, 1);
    else this.#connections.delete(gatewayId);
    this.#write(gatewayId, online, at, false);
  }

  /** An accepted event from the gateway: it is alive now. */
  seen(gatewayId: string): void {
    const now = this.#now();
    const t = now.getTime();
    this.#lastSeen.set(gatewayId, later(this.#lastSeen.get(gatewayId), now.toISOString())!);
    const shared = this.opts.shared;
    if (shared && !(t - (this.#sharedAt.get(gatewayId) ?? -Infinity) < (this.opts.shareEveryMs ?? LAST_SEEN_SHARE_MS))) {
      this.#sharedAt.set(gatewayId, t);
      shared.seen(gatewayId, t).catch((err: Error) => this.#sharedFailed(err));
    }
    const last = this.#persistedAt.get(gatewayId);
    if (last !== undefined && t - last < (this.opts.persistEveryMs ?? LAST_SEEN_PERSIST_MS)) return;
    this.#persistedAt.set(gatewayId, t);
    // It just sent an event, so it is online (the at-guard in storage keeps a later disconnect).
    this.queue.presence({ id: gatewayId, online: true, at: now.toISOString() });
  }

  /** Online as seen by this instance; undefined when this instance has not seen the gateway's connection or status. */
  online(gatewayId: string): boolean | undefined {
    if (this.#connections.has(gatewayId)) return true;
    return this.opts.authoritative || this.#statusKnown.has(gatewayId) ? false : undefined;
  }

  /** Last seen by this instance. */
  lastSeen(gatewayId: string): string | undefined {
    return this.#lastSeen.get(gatewayId);
  }

  /**
   * What GraphQL shows for the gateway of `row`: the shared presence when there is one, else this
   * instance's view, else the row, by the rule `gateways list` follows too (shown-presence.ts).
   * When Redis does not answer, this instance's view, logged.
   */
  async shown(row: Pick<GatewayRow, 'id' | 'online' | 'lastSeen'>): Promise<ShownPresence> {
    const shared = this.opts.shared ? await this.#sharedRead(row.id) : undefined;
    return shownPresence(row, shared, { online: this.online(row.id), lastSeen: this.lastSeen(row.id), holds: this.opts.authoritative && this.#connections.has(row.id) });
  }

  /**
   * The connections this instance holds (embedded broker), each with the time of the status it
   * applied: the shared presence re-asserts them (redis-state.ts `holding`). None without the
   * embedded broker: an external broker's statuses are no instance's to hold.
   */
  *held(): Iterable<readonly [gatewayId: string, statusAtMs: number]> {
    if (!this.opts.authoritative) return;
    for (const id of this.#connections.keys()) {
      const at = this.#statusAt.get(id);
      if (at !== undefined) yield [id, at] as const;
    }
  }

  /** Gateways connected as seen by this instance (metrics, health). */
  get onlineCount(): number {
    return this.#connections.size;
  }

  #sharedRead(gatewayId: string): Promise<SharedPresenceEntry | 'unavailable'> {
    let p = this.#reads.get(gatewayId);
    if (!p) {
      if (this.#reads.size === 0) setImmediate(() => this.#reads.clear());
      p = this.opts.shared!.read([gatewayId]).then(
        (m) => m.get(gatewayId) ?? {},
        (err: Error) => {
          this.#sharedFailed(err);
          return 'unavailable' as const;
        },
      );
      this.#reads.set(gatewayId, p);
    }
    return p;
  }

  #now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  #write(gatewayId: string, online: boolean, when: Date, held: boolean): void {
    const at = when.toISOString();
    this.#statusKnown.add(gatewayId);
    this.#statusAt.set(gatewayId, when.getTime());
    this.#lastSeen.set(gatewayId, later(this.#lastSeen.get(gatewayId), at)!);
    this.#persistedAt.set(gatewayId, this.#now().getTime());
    this.opts.shared?.status(gatewayId, online, when.getTime(), held).catch((err: Error) => this.#sharedFailed(err));
    this.queue.presence({ id: gatewayId, online, at });
  }

  /** Shared presence is best effort: this instance's view and storage still hold. Logged at most every 30 s. */
  #sharedFailed(err: Error): void {
    const t = this.#now().getTime();
    if (t - this.#lastSharedErrorLog < 30_000) return;
    this.#lastSharedErrorLog = t;
    this.opts.logger?.warn({ err: err.message }, 'shared presence (redis) failed; answering from this instance');
  }
}
