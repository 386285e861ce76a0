import { decodeInbound, isCommandType, type ErrorCode, type Logger } from '@tu/shared';
import type { Registry } from '../registry/registry.js';
import { RecentIds } from './dedup.js';
import { effectsOf, storedEvent } from './effects.js';
import { labelledWithoutVector, unpackEmbeddings } from './unpack.js';
import { fanoutTopic, toPayload, type Emitter } from './fanout.js';
import type { Presence } from './presence.js';
import type { StorageQueue } from './storage-queue.js';

export interface IngestStats {
  received: number;
  accepted: number;
  rejected: Partial<Record<ErrorCode, number>>;
  /** Dropped before fan-out (id seen recently); duplicates found only by storage are in the queue stats. */
  duplicates: number;
  fannedOut: number;
}

export type IngestOutcome = { ok: true; duplicate: boolean } | { ok: false; code: ErrorCode; message: string };

/**
 * One inbound event from an authenticated gateway: validate (decodeInbound; the topic's and the
 * source's gateway must be the authenticated one), drop duplicates by CloudEvent id, fan out to
 * subscribers at once, then queue for storage. Resolves once the event is stored (the ingress
 * acknowledges the gateway's QoS 1 publish only then), or at once when rejected.
 */
export class Ingest {
  readonly stats: IngestStats = { received: 0, accepted: 0, rejected: {}, duplicates: 0, fannedOut: 0 };
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
      now?: () => Date;
    },
  ) {
    this.#recent = new RecentIds(deps.dedupWindow);
  }

  /** Primes the duplicate window with the newest stored ids (re-sends after a relay restart). */
  prime(ids: string[]): void {
    for (const id of ids) this.#recent.add(id, Promise.resolve());
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
    const seen = this.#recent.get(e.id);
    if (seen) {
      this.stats.duplicates++;
      return seen.then(() => ({ ok: true, duplicate: true }) as const);
    }
    this.stats.accepted++;
    this.deps.presence?.seen(gatewayId);
    // Fan-out first: subscribers never wait for the database.
    this.deps.emitter.emit({ topic: fanoutTopic(gw.tenantId, gatewayId), payload: { analysisEvents: toPayload(e, gatewayId) } });
    this.stats.fannedOut++;
    const receivedAt = (this.deps.now?.() ?? new Date()).toISOString();
    const written = this.deps.queue.push({ kind: 'event', event: storedEvent(e, gatewayId, gw.tenantId, receivedAt), effects: effectsOf(e, gatewayId, gw.tenantId, receivedAt) });
    this.#recent.add(e.id, written);
    return written.then((r) => ({ ok: true, duplicate: r === 'duplicate' }) as const);
  }
}
