/** `gateways add|list|revoke|rotate|restore`: the registry's gateways, as the operator manages them. */
import { TuError } from '@tu/shared';
import type { RelayConfig } from '../config.js';
import { rabbitmqConnectionCloser } from '../ingress/rabbitmq-management.js';
import { shownPresence } from '../ingest/shown-presence.js';
import { isRevoked, type GatewayCredential, type Registry } from '../registry/registry.js';
import type { Storage } from '../storage/types.js';
import type { SharedPresenceReader } from './shared-presence.js';

/** The lines that hand a new secret to the operator (shown once; not kept in clear). */
function credentialLines(id: string, cred: GatewayCredential, printHash: boolean): string[] {
  return [
    `secret (shown once; configure it on the gateway as its uplink password): ${cred.secret}`,
    `MQTT: username=${id} password=<secret>`,
    ...(printHash ? [`secretHash (for its registryFile entry; no secret can be recovered from it): ${cred.secretHash}`] : []),
  ];
}

export async function addGateway(registry: Registry, id: string, o: { tenant: string; name: string | undefined; printHash: boolean }): Promise<string> {
  const cred = await registry.createGateway(id, o.tenant, o.name === undefined ? {} : { name: o.name });
  return [`gateway ${id} added to tenant ${o.tenant}`, ...credentialLines(id, cred, o.printHash)].join('\n');
}

export interface ListGatewaysDeps {
  storage: Storage;
  /** The shared presence, with config `redis` (shared-presence.ts); without it the stored rows are the presence. */
  presence: SharedPresenceReader | undefined;
  /** Where a note for the operator goes (stderr): stdout stays one line a gateway. */
  warn: (line: string) => void;
}

/**
 * One line a gateway: id, tenant, name, online|offline|unknown, last seen, active|revoked. The
 * presence follows the rule GraphQL follows (ingest/shown-presence.ts), with no instance view of
 * its own: the stored online flag alone went on saying "online" for the gateways of a relay
 * killed without a clean stop, while the dashboard said offline. With Redis configured and not
 * answering the truth is not known here, and the column says so ("unknown").
 */
export async function listGateways(deps: ListGatewaysDeps, tenant: string | undefined): Promise<string> {
  const rows = (await deps.storage.allGateways()).filter((g) => tenant === undefined || g.tenantId === tenant);
  const shared = deps.presence && rows.length > 0 ? await deps.presence.read(rows.map((g) => g.id)) : undefined;
  if (shared && 'unavailable' in shared) deps.warn(`presence unknown: Redis (redis.url) did not answer (${shared.unavailable}); the online column says "unknown" rather than the stored flag, which a relay stopped without a clean stop leaves at "online"`);
  return rows
    .map((g) => {
      const p = shownPresence(g, shared === undefined ? undefined : 'unavailable' in shared ? 'unavailable' : (shared.entries.get(g.id) ?? {}));
      return `${g.id}\t${g.tenantId}\t${g.name ?? ''}\t${!p.known ? 'unknown' : p.online ? 'online' : 'offline'}\t${p.lastSeen ?? '-'}\t${isRevoked(g) ? 'revoked' : 'active'}`;
    })
    .join('\n');
}

export async function revokeGateway(config: RelayConfig, registry: Registry, id: string): Promise<string> {
  if (!(await registry.revoke(id))) throw new TuError('UNKNOWN_GATEWAY', `no gateway ${id} is registered (gateways list shows those there are)`);
  return cutOff(config, id, `gateway ${id} revoked: its secret no longer verifies; its events stay`, 'revoked');
}

/** `rotate` (an active gateway) or `restore` (a revoked one): a new secret, the old one refused from now on. */
export async function newGatewaySecret(config: RelayConfig, registry: Registry, id: string, o: { restore: boolean; printHash: boolean }): Promise<string> {
  const cred = o.restore ? await registry.restore(id) : await registry.rotate(id);
  if (o.restore) return [`gateway ${id} restored with a new secret: it may log in again with it`, ...credentialLines(id, cred, o.printHash)].join('\n');
  const done = await cutOff(config, id, `gateway ${id} has a new secret: its old one no longer verifies`, 'given a new secret');
  return [done, ...credentialLines(id, cred, o.printHash)].join('\n');
}

/**
 * How the gateway's connections made with its old secret end, by ingress mode. Embedded: every
 * instance closes them at its next credential check (ingress.credentialCheckMs; Registry.stillValid
 * compares the stored hash). External: the broker logs it in, so only its events are refused, by
 * every instance within ingress.credentialCheckMs. RabbitMQ: the broker refuses the old secret once its cached answer
 * expires; open connections are closed through the management API when configured. A rotated
 * gateway stays active, so unlike a revoked one its open connection is not dead-lettered: without
 * management it stays open until it reconnects, and then needs the new secret.
 */
async function cutOff(config: RelayConfig, id: string, done: string, what: 'revoked' | 'given a new secret'): Promise<string> {
  const r = config.ingress.mode === 'rabbitmq' ? config.ingress.rabbitmq : undefined;
  if (!r) {
    if (config.ingress.mode === 'embedded') return `${done}; its open connections are closed within ingress.credentialCheckMs (${config.ingress.credentialCheckMs} ms)`;
    // External: the broker's password file still lets it in; the instances refuse its events (relay/src/registry/refresh.ts).
    return what === 'revoked'
      ? `${done}; every relay instance refuses its events within ingress.credentialCheckMs (${config.ingress.credentialCheckMs} ms); remove it from the external broker's password file too (mosquitto_passwd -D)`
      : `${done}; with an external broker, change its password there too (mosquitto_passwd)`;
  }
  const cacheNote = `the broker refuses its next connection${what === 'revoked' ? '' : ' with the old secret'} within ingress.rabbitmq.cacheTtlMs (${r.cacheTtlMs} ms)`;
  if (!r.management) {
    return what === 'revoked'
      ? `${done}; ${cacheNote}; an open connection stays open (set ingress.rabbitmq.management to close it), what it publishes is dead-lettered`
      : `${done}; ${cacheNote}; an open connection made with the old secret stays open until it reconnects (set ingress.rabbitmq.management to close it)`;
  }
  // The change stands whatever happens here: a failure is reported, not thrown (for a revoked
  // gateway the ingress closes the connection at its next publish, relay/src/ingress/rabbitmq.ts).
  const closed = await rabbitmqConnectionCloser({ settings: r.management, username: r.username, password: r.password }).closeGateway(id, `gateway ${id} ${what} (tu relay gateways)`);
  return closed.ok
    ? `${done}; closed its ${closed.closed} open broker connection(s); ${cacheNote}`
    : `${done}; ${cacheNote}; closing its open broker connections FAILED: ${closed.reason}.${what === 'revoked' ? ' The relay instances close them at its next publish.' : ` Close them in the management UI (connections of user ${id}); the new secret stands.`}`;
}
