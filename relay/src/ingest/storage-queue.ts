import { retryDelay, type Backoff, type Logger } from '@tu/shared';
import type { EventEffects, PresenceUpdate, Storage, StoredEvent } from '../storage/types.js';

export type StorageJob =
  | { kind: 'event'; event: StoredEvent; effects: EventEffects }
  | { kind: 'presence'; gatewayId: string; online: boolean; at: string };

/** A failing database is retried after 50 ms, doubling to 5 s (shared/src/retry-policy.ts). */
const WRITE_RETRY: Backoff = { initialDelayMs: 50, maxDelayMs: 5000, jitter: 0 };

interface Pending {
  job: StorageJob;
  resolve: (r: 'stored' | 'duplicate') => void;
}

export interface StorageQueueStats {
  stored: number;
  duplicates: number;
  upserts: number;
  analyses: number;
  errors: number;
  batches: number;
}

/**
 * The bounded queue between fan-out and storage. One writer drains it in batches (one
 * transaction per batch); a failing database is retried with backoff while jobs wait, so a slow
 * or down database delays storage (and gateways' acknowledgements), never fan-out.
 * `push` waits while the queue is full.
 */
export class StorageQueue {
  readonly stats: StorageQueueStats = { stored: 0, duplicates: 0, upserts: 0, analyses: 0, errors: 0, batches: 0 };
  #queue: Pending[] = [];
  #spaceWaiters: (() => void)[] = [];
  #draining = false;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(
    private readonly storage: Storage,
    private readonly opts: { max: number; batchMax: number; logger: Logger },
  ) {}

  get depth(): number {
    return this.#queue.length;
  }

  async push(job: StorageJob): Promise<'stored' | 'duplicate'> {
    while (this.#queue.length >= this.opts.max && !this.#closed) await new Promise<void>((r) => this.#spaceWaiters.push(r));
    return new Promise((resolve) => {
      this.#queue.push({ job, resolve });
      if (!this.#draining) void this.#drain();
    });
  }

  /** Resolves once everything queued so far is written. */
  async flush(): Promise<void> {
    if (this.#queue.length === 0 && !this.#draining) return;
    await new Promise<void>((r) => this.#idle.push(r));
  }

  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    for (const w of this.#spaceWaiters.splice(0)) w();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    let failures = 0;
    while (this.#queue.length > 0) {
      const batch = this.#queue.slice(0, this.opts.batchMax);
      try {
        await this.#write(batch);
        this.#queue.splice(0, batch.length);
        for (const w of this.#spaceWaiters.splice(0, batch.length)) w();
        failures = 0;
      } catch (err) {
        this.stats.errors++;
        const backoff = retryDelay(failures++, WRITE_RETRY);
        this.opts.logger.error({ err: (err as Error).message, depth: this.#queue.length, retryInMs: backoff }, 'storage write failed; retrying');
        await new Promise((r) => setTimeout(r, backoff));
        if (this.#closed) break;
      }
    }
    this.#draining = false;
    for (const r of this.#idle.splice(0)) r();
  }

  async #write(batch: Pending[]): Promise<void> {
    const events = batch.filter((p): p is Pending & { job: { kind: 'event' } } => p.job.kind === 'event');
    const results = events.length > 0 ? await this.storage.recordEvents(events.map((p) => ({ event: p.job.event, effects: p.job.effects }))) : [];
    // One statement for the batch's presence changes, the latest per gateway (storage ignores an older one anyway).
    const presence = new Map<string, PresenceUpdate>();
    for (const { job } of batch) {
      if (job.kind !== 'presence') continue;
      const prev = presence.get(job.gatewayId);
      if (!prev || prev.at <= job.at) presence.set(job.gatewayId, { id: job.gatewayId, online: job.online, at: job.at });
    }
    if (presence.size > 0) await this.storage.setGatewayPresences([...presence.values()]);
    this.stats.batches++;
    events.forEach((p, i) => {
      const r = results[i] ?? 'stored';
      if (r === 'stored') {
        this.stats.stored++;
        if (p.job.effects.machine) this.stats.upserts++;
        if (p.job.effects.analysis) this.stats.analyses++;
      } else this.stats.duplicates++;
    });
    let i = 0;
    for (const p of batch) p.resolve(p.job.kind === 'event' ? (results[i++] ?? 'stored') : 'stored');
  }
}
