import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '@tu/shared';
import type { SharedVerifiedLogins } from '../registry/secrets.js';
import type { SharedPresence, SharedPresenceEntry, SharedRecentIds } from './shared-state.js';

/**
 * A status applies only when it is not older than the recorded one: two instances may handle a
 * gateway's statuses in either order (a broker redelivery, one instance slower than another), and
 * the later-handled one must not win just for being handled later. One script, so the compare
 * and the write are one step for Redis (no other instance's write in between).
 * An "offline" from the embedded broker of one instance does not apply while the gateway is held
 * online by another: a gateway whose old connection on A died unnoticed reconnects to B, and
 * when A drops the stale socket later, its newer "offline" marked the connected gateway offline
 * everywhere, for good.
 * KEYS[1] the gateway's presence hash; ARGV online ("1"/"0"), the status time (ms), the instance
 * holding the connection ('' when the status came from an external broker).
 */
const STATUS_LUA = `
local at = tonumber(ARGV[2])
local statusAt = tonumber(redis.call('HGET', KEYS[1], 'statusAt') or '-1')
local heldElsewhere = false
if ARGV[1] == '0' and ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'online') == '1' then
  local holder = redis.call('HGET', KEYS[1], 'heldBy')
  heldElsewhere = holder ~= false and holder ~= ARGV[3]
end
if at >= statusAt and not heldElsewhere then
  redis.call('HSET', KEYS[1], 'online', ARGV[1], 'statusAt', ARGV[2])
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'heldBy', ARGV[3]) else redis.call('HDEL', KEYS[1], 'heldBy') end
end
local seen = tonumber(redis.call('HGET', KEYS[1], 'lastSeen') or '-1')
if at > seen then redis.call('HSET', KEYS[1], 'lastSeen', ARGV[2]) end
return 1`;

/** Last seen = the latest of the times it is told (events reach instances out of order). KEYS[1] the hash; ARGV the time (ms). */
const SEEN_LUA = `
local seen = tonumber(redis.call('HGET', KEYS[1], 'lastSeen') or '-1')
if tonumber(ARGV[1]) > seen then redis.call('HSET', KEYS[1], 'lastSeen', ARGV[1]) end
return 1`;

/**
 * An instance re-asserting a connection it holds (embedded broker), every heartbeat: "online as
 * of the time it connected, held by me", applied as a status would be (not older than the
 * recorded one), and written only when the hash says otherwise. Redis that lost its data (a
 * restart without persistence, FLUSHALL, a failover to a lagging replica, an evicted key) had
 * the hash gone, or recreated by SEEN_LUA with lastSeen alone, until the gateway reconnected:
 * possibly days of "offline" through the other instances. A newer status recorded by another
 * instance (the gateway moved there) is left alone, so a stale connection never takes it back.
 * KEYS[1] the gateway's presence hash; ARGV the time of its "online" (ms), this instance.
 */
const HOLD_LUA = `
local at = tonumber(ARGV[1])
local statusAt = tonumber(redis.call('HGET', KEYS[1], 'statusAt') or '-1')
if at < statusAt then return 0 end
if at == statusAt and redis.call('HGET', KEYS[1], 'online') == '1' and redis.call('HGET', KEYS[1], 'heldBy') == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'online', '1', 'statusAt', ARGV[1], 'heldBy', ARGV[2])
local seen = tonumber(redis.call('HGET', KEYS[1], 'lastSeen') or '-1')
if at > seen then redis.call('HSET', KEYS[1], 'lastSeen', ARGV[1]) end
return 1`;

/**
 * The presence hashes of `gatewayIds` (`{prefix}p:{gatewayId}`, RedisState below), as every
 * reader takes them: the instances (RedisState `read`, for GraphQL) and `gateways list`
 * (relay/src/cli/shared-presence.ts, a connection of its own). `redis` carries the deployment's
 * `keyPrefix`. "Online" through a connection held by an instance whose liveness key is gone
 * (kill -9, a lost machine: it never wrote the gateway's "offline") reads offline.
 */
export async function readPresence(redis: Pick<Redis, 'hmget' | 'exists'>, gatewayIds: readonly string[]): Promise<Map<string, SharedPresenceEntry>> {
  const rows = await Promise.all(
    gatewayIds.map(async (id) => {
      const [online, lastSeen, heldBy] = await redis.hmget(`p:${id}`, 'online', 'lastSeen', 'heldBy');
      // Online through a connection held by an instance that is gone: offline (see RedisState's comment).
      const held = online === '1' && heldBy ? (await redis.exists(`i:${heldBy}`)) === 1 : true;
      return { online: online == null ? undefined : online === '1' && held, lastSeen };
    }),
  );
  const out = new Map<string, SharedPresenceEntry>();
  gatewayIds.forEach((id, i) => {
    const { online, lastSeen } = rows[i]!;
    out.set(id, { ...(online !== undefined ? { online } : {}), ...(lastSeen != null ? { lastSeen: new Date(Number(lastSeen)).toISOString() } : {}) });
  });
  return out;
}

type WithScripts = Redis & {
  tuPresenceHold(key: string, atMs: string, heldBy: string): Promise<number>;
  tuPresenceStatus(key: string, online: string, atMs: string, heldBy: string): Promise<number>;
  tuPresenceSeen(key: string, atMs: string): Promise<number>;
};

/**
 * Presence and the shared duplicate window in Redis (config `redis`), under `keyPrefix`:
 * - `{prefix}p:{gatewayId}`: hash `online` ("1"/"0"), `statusAt` (ms of that status), `lastSeen` (ms);
 * - `{prefix}e:{gatewayId}:{eventId}`: an event id claimed by one instance, expiring after `dedupTtlMs`;
 * - `{prefix}v:{tag}`: a gateway login one instance verified (a keyed tag, relay/src/registry/secrets.ts
 *   `VerifiedCache`), expiring after `verifiedLoginTtlMs`;
 * - `{prefix}i:{instanceId}`: this instance is alive, renewed every third of `livenessMs`. A gateway
 *   connected to the embedded broker of an instance that died (kill -9, a lost machine) never got
 *   its "offline": the hash's `heldBy` names the instance, and without its liveness key the
 *   gateway reads offline. Real time, not the injected clock: it is about this process being alive.
 *   With the same beat the instance re-asserts the connections it holds (`holding`, HOLD_LUA), so
 *   presence lost with Redis's data heals within a third of `livenessMs`.
 * Commands are auto-pipelined (a page of gateways is one round trip) and time out after 1 s,
 * so a Redis outage slows nothing for long: callers fall back as their comments say.
 */
export class RedisState implements SharedPresence, SharedRecentIds, SharedVerifiedLogins {
  readonly #redis: WithScripts;
  /** This instance, in `heldBy` and its liveness key. */
  readonly instanceId = randomBytes(8).toString('hex');
  readonly #heartbeat: NodeJS.Timeout;
  #lastErrorLog = 0;
  /** The connections this instance holds, with the time of each one's "online" (ms); see `holding`. */
  #held: () => Iterable<readonly [gatewayId: string, statusAtMs: number]> = () => [];

  constructor(private readonly opts: { url: string; keyPrefix: string; dedupTtlMs: number; livenessMs: number; verifiedLoginTtlMs: number; logger: Logger }) {
    const redis = new Redis(opts.url, { keyPrefix: opts.keyPrefix, enableAutoPipelining: true, commandTimeout: 1000, maxRetriesPerRequest: 1 });
    redis.defineCommand('tuPresenceStatus', { numberOfKeys: 1, lua: STATUS_LUA });
    redis.defineCommand('tuPresenceSeen', { numberOfKeys: 1, lua: SEEN_LUA });
    redis.defineCommand('tuPresenceHold', { numberOfKeys: 1, lua: HOLD_LUA });
    // ioredis reconnects by itself and emits an error per failed attempt: logged at most every 30 s.
    redis.on('error', (err: Error) => {
      if (Date.now() - this.#lastErrorLog < 30_000) return;
      this.#lastErrorLog = Date.now();
      opts.logger.warn({ err: err.message }, 'redis (presence, shared duplicate window) unavailable; retrying');
    });
    this.#redis = redis as WithScripts;
    const beat = () => {
      // The liveness key, renewed; its previous value says whether Redis kept it. Gone (a Redis
      // restarted without persistence, FLUSHALL, a failover to a replica that never had it, or a
      // beat later than livenessMs): the connections this instance holds are re-asserted. Only
      // then: one script per held gateway every beat is 3,000-5,000 at once per instance in
      // bench/fleet.bench.ts, a burst for the relay and Redis every beat, against a loss that is
      // rare. (A presence hash lost alone, Redis's liveness key kept, heals at the gateway's
      // next connection.)
      redis
        .set(`i:${this.instanceId}`, '1', 'PX', opts.livenessMs, 'GET')
        .then((previous) => {
          // Not connected (any more): nothing queued, one command per held gateway would pile up
          // in ioredis's offline queue; the first beat after the reconnect finds the key gone.
          if (previous !== null || redis.status !== 'ready') return;
          for (const [gatewayId, at] of this.#held()) void this.#redis.tuPresenceHold(`p:${gatewayId}`, String(at), this.instanceId).catch(() => undefined);
        })
        .catch(() => undefined);
    };
    beat();
    this.#heartbeat = setInterval(beat, Math.max(100, Math.floor(opts.livenessMs / 3)));
    this.#heartbeat.unref();
  }

  /**
   * Tells the heartbeat which gateway connections this instance holds (embedded broker), each
   * with the time of its "online" (presence.ts `held`). Read and re-asserted in the same turn of
   * the event loop, so a disconnection is never overtaken by a re-assertion of it.
   */
  holding(held: () => Iterable<readonly [gatewayId: string, statusAtMs: number]>): void {
    this.#held = held;
  }

  async status(gatewayId: string, online: boolean, atMs: number, held: boolean): Promise<void> {
    await this.#redis.tuPresenceStatus(`p:${gatewayId}`, online ? '1' : '0', String(atMs), held ? this.instanceId : '');
  }

  async seen(gatewayId: string, atMs: number): Promise<void> {
    await this.#redis.tuPresenceSeen(`p:${gatewayId}`, String(atMs));
  }

  read(gatewayIds: readonly string[]): Promise<Map<string, SharedPresenceEntry>> {
    return readPresence(this.#redis, gatewayIds);
  }

  async claim(gatewayId: string, eventId: string): Promise<boolean> {
    return (await this.#redis.set(`e:${gatewayId}:${eventId}`, '1', 'PX', this.opts.dedupTtlMs, 'NX')) === 'OK';
  }

  async hasVerified(tag: string): Promise<boolean> {
    // Not connected: a miss at once (the login runs scrypt) rather than a wait for the command timeout.
    if (this.#redis.status !== 'ready') return false;
    return (await this.#redis.exists(`v:${tag}`).catch(() => 0)) === 1;
  }

  async addVerified(tag: string): Promise<void> {
    // Not connected: dropped, not queued in ioredis's offline queue behind every other login.
    if (this.#redis.status !== 'ready') return;
    await this.#redis.set(`v:${tag}`, '1', 'PX', this.opts.verifiedLoginTtlMs).catch(() => undefined);
  }

  /**
   * Resolves once the connection is closed (quit answers before the socket is gone), or at once
   * while Redis is unreachable: a relay must stop during an outage too.
   */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    if (this.#redis.status === 'end') return;
    if (this.#redis.status !== 'ready') {
      // Nothing to tidy there: the liveness key lapses by itself (livenessMs). quit would wait in
      // the offline queue for a reconnect that may never come, and between two reconnect attempts
      // ioredis has no socket left to emit 'end' for: disconnect stops its retrying, and that is all.
      this.#redis.disconnect();
      return;
    }
    // Stopped cleanly: its gateways were disconnected (offline written) before this.
    await this.#redis.del(`i:${this.instanceId}`).catch(() => undefined);
    const ended = new Promise<'ended'>((resolve) => this.#redis.once('end', () => resolve('ended')));
    void this.#redis.quit().catch(() => this.#redis.disconnect());
    // Redis may go between the check above and here, and quit then waits for a reconnect: at most
    // 2 s, as the fan-out's close (redis-fanout.ts).
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 2000)));
    if ((await Promise.race([ended, late])) === 'late') this.#redis.disconnect();
    clearTimeout(timer);
  }
}
