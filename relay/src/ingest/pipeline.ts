import { decodeInbound, isCommandType, type CloudEvent, type ErrorCode, type Logger } from '@tu/shared';
import type { Registry } from '../registry/registry.js';
import { RecentIds } from './dedup.js';
import { effectsOf, storedEvent } from './effects.js';
import { labelledKindContradiction } from './labelled-kind.js';
import { labelledWithoutVector, unpackEmbeddings } from './unpack.js';
import { fanoutTopic, toPayload, type Emitter } from './fanout.js';
import type { Presence } from './presence.js';
import type { SharedRecentIds } from './shared-state.js';
import type { StorageQueue } from './storage-queue.js';
import type { EventKey } from '../storage/types.js';

export interface IngestStats {
  received: number;
  accepted: number;
  rejected: Partial<Record<ErrorCode, number>>;
  /** Dropped before fan-out (id seen recently by this instance); duplicates found only by storage are in the queue stats. */
  duplicates: number;
  /** Not fanned out because another instance claimed the id first (shared window); still written, storage decides. */
  sharedDuplicates: number;
  /** Shared window unavailable (Redis): the event was fanned out unchecked there. */
  sharedErrors: number;
  fannedOut: number;
  /** Fan-out publishes that failed (Redis away): the event was stored, but no subscriber got it. */
  fanoutErrors: number;
}

export type IngestOutcome = { ok: true; duplicate: boolean } | { ok: false; code: ErrorCode; message: string };

/**
 * One inbound event from an authenticated gateway: validate (decodeInbound; the topic's and the
 * source's gateway must be the authenticated one), drop duplicates by CloudEvent id, fan out to
 * subscribers at once, then queue for storage. Resolves once the event is stored (the ingress
 * acknowledges the gateway's QoS 1 publish only then), or at once when rejected.
 */
export class Ingest {
  readonly stats: IngestStats = { received: 0, accepted: 0, rejected: {}, duplicates: 0, sharedDuplicates: 0, sharedErrors: 0, fannedOut: 0, fanoutErrors: 0 };
  readonly #recent: RecentIds;
  /** Per-gateway chains, used only while a gateway's registry entry is being loaded (keeps order). */
  readonly #loading = new Map<string, Promise<unknown>>();

  constructor(
    private readonly deps: {
      registry: Registry;
      queue: StorageQueue;
      emitter: Emitter;
      logger: Logger;
      maxPayloadBytes: number;
      dedupWindow: number;
      /** Told of every accepted event: a gateway's "last seen" moves with its events. */
      presence?: Pick<Presence, 'seen'>;
      /** The duplicate window shared with the other instances (Redis); see #accept. */
      sharedIds?: SharedRecentIds;
      /** Told of each failed fan-out: the Redis fan-out logs it (rate-limited) and keeps it for health. */
      onFanoutError?: (err: Error) => void;
      now?: () => Date;
    },
  ) {
    this.#recent = new RecentIds(deps.dedupWindow);
  }

  /** Primes the duplicate window with the newest stored events (re-sends after a relay restart). */
  prime(keys: readonly EventKey[]): void {
    for (const k of keys) this.#recent.add(k, Promise.resolve());
  }

  handle(gatewayId: string, topic: string, payload: Buffer): Promise<IngestOutcome> {
    const pending = this.#loading.get(gatewayId);
    if (pending || !this.deps.registry.cached(gatewayId)) {
      const next = (pending ?? Promise.resolve()).then(() => this.deps.registry.gateway(gatewayId)).then(() => this.#handle(gatewayId, topic, payload));
      const tail = next.catch(() => undefined);
      this.#loading.set(gatewayId, tail);
      void tail.then(() => {
        if (this.#loading.get(gatewayId) === tail) this.#loading.delete(gatewayId);
      });
      return next;
    }
    return this.#handle(gatewayId, topic, payload);
  }

  #reject(gatewayId: string, code: ErrorCode, message: string): IngestOutcome {
    this.stats.rejected[code] = (this.stats.rejected[code] ?? 0) + 1;
    this.deps.logger.warn({ gatewayId, code, reason: message }, 'rejected gateway event');
    return { ok: false, code, message };
  }

  #handle(gatewayId: string, topic: string, payload: Buffer): Promise<IngestOutcome> {
    this.stats.received++;
    const gw = this.deps.registry.cached(gatewayId);
    if (!gw) return Promise.resolve(this.#reject(gatewayId, 'UNKNOWN_GATEWAY', `gateway ${gatewayId.slice(0, 64)} is not registered`));
    // An external broker logs gateways in from its own password file, so a revoked gateway still
    // gets its events to us: refused here, on every ingress (relay/src/ingress/external.ts says
    // how soon this instance learns of a revocation).
    if (gw.revoked) return Promise.resolve(this.#reject(gatewayId, 'UNKNOWN_GATEWAY', `gateway ${gatewayId} is revoked (\`gateways restore\` lets it in again)`));
    const type = topic.split('/')[3];
    if (type && isCommandType(type)) return Promise.resolve(this.#reject(gatewayId, 'COMMAND_REFUSED', `command ${type} on ${topic.slice(0, 200)}`));
    const d = decodeInbound(topic, payload, { gatewayId, maxPayloadBytes: this.deps.maxPayloadBytes });
    if (!d.ok) return Promise.resolve(this.#reject(gatewayId, d.rejection.code, d.rejection.message));
    if (d.parsed.kind !== 'event') return Promise.resolve(this.#reject(gatewayId, 'COMMAND_REFUSED', `command ${d.parsed.type}`));
    let e;
    try {
      e = unpackEmbeddings(d.event);
    } catch (err) {
      // The schema checked the length; values that are not finite floats are caught here.
      return Promise.resolve(this.#reject(gatewayId, 'INVALID_DATA', `${d.event.type} ${d.event.id.slice(0, 64)}: ${(err as Error).message}`));
    }
    if (labelledWithoutVector(e)) return Promise.resolve(this.#reject(gatewayId, 'EMBEDDING_MISSING', `recognition.labelled ${e.id.slice(0, 64)} came without its embedding (the gateway could not read it)`));
    const contradiction = labelledKindContradiction(e);
    if (contradiction) return Promise.resolve(this.#reject(gatewayId, 'INVALID_DATA', contradiction));
    const key = { gatewayId, id: e.id };
    const seen = this.#recent.get(key);
    if (seen) {
      this.stats.duplicates++;
      return seen.then(() => ({ ok: true, duplicate: true }) as const);
    }
    const shared = this.deps.sharedIds;
    const written = shared
      ? shared.claim(gatewayId, e.id).then(
          (first) => this.#accept(gw.tenantId, gatewayId, e, first),
          (err: Error) => {
            // Logged on the first failure and then every 1000th, not per event during an outage.
            if (this.stats.sharedErrors++ % 1000 === 0) this.deps.logger.warn({ err: err.message, failures: this.stats.sharedErrors }, 'shared duplicate window (redis) unavailable; fanning out unchecked');
            return this.#accept(gw.tenantId, gatewayId, e, true);
          },
        )
      : this.#accept(gw.tenantId, gatewayId, e, true);
    // Set before the claim answers, so a repeat reaching this instance meanwhile waits for this one.
    this.#recent.add(key, written);
    return written.then((r) => ({ ok: true, duplicate: r === 'duplicate' }) as const);
  }

  /**
   * Two duplicate windows, and the database key behind them:
   * - this instance's (RecentIds): a gateway re-sending after a reconnect reaches the same instance
   *   on the embedded broker; answered from memory, and the repeat is acknowledged once the
   *   original is stored;
   * - the shared one (Redis SET NX, when configured): behind a clustered broker a redelivered
   *   event may reach another instance, whose memory never saw it. The first instance to claim
   *   the id fans it out; the others do not, so a subscriber (on any instance, through the shared
   *   fan-out) gets it once. The others still write it: storage is where "stored" is decided, so
   *   the acknowledgement waits for it even if the first instance died before storing;
   * - the events table's primary key, the final guard: it alone is durable and exact (the
   *   windows forget, and an unavailable Redis lets a duplicate through to fan-out, not to storage).
   */
  #accept(tenantId: string, gatewayId: string, e: CloudEvent, first: boolean): Promise<'stored' | 'duplicate'> {
    if (first) {
      this.stats.accepted++;
      this.deps.presence?.seen(gatewayId);
      // Fan-out first: subscribers never wait for the database.
      // With a callback: without one, mqemitter-redis raised a failed PUBLISH as an 'error' event
      // (relay/src/ingest/redis-fanout.ts). Storage does not wait for it either way.
      this.deps.emitter.emit({ topic: fanoutTopic(tenantId, gatewayId), payload: { analysisEvents: toPayload(e, gatewayId) } }, (err) => {
        if (!err) return;
        this.stats.fanoutErrors++;
        this.deps.onFanoutError?.(err);
      });
      this.stats.fannedOut++;
    } else this.stats.sharedDuplicates++;
    const receivedAt = (this.deps.now?.() ?? new Date()).toISOString();
    return this.deps.queue.push({ kind: 'event', event: storedEvent(e, gatewayId, tenantId, receivedAt), effects: effectsOf(e, gatewayId, tenantId, receivedAt) });
  }
}
