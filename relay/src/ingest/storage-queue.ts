import { retryDelay, type Backoff, type Logger } from '@tu/shared';
import type { EventEffects, PresenceUpdate, Storage, StoredEvent } from '../storage/types.js';

export type StorageJob = { kind: 'event'; event: StoredEvent; effects: EventEffects };

/** A failing database is retried after 50 ms, doubling to 5 s (shared/src/retry-policy.ts). */
const WRITE_RETRY: Backoff = { initialDelayMs: 50, maxDelayMs: 5000, jitter: 0 };

interface Pending {
  job: StorageJob;
  resolve: (r: 'stored' | 'duplicate') => void;
  /** When it was queued (ms, the queue's clock). */
  at: number;
}

/** How the writes go, for /api/v1/health (times in ms of the queue's clock). */
export interface StorageQueueHealth {
  /** When a batch was last committed (undefined: none yet). */
  lastBatchAt?: number;
  /** How long the oldest job queued or being written has waited (0: none). */
  oldestWaitingMs: number;
  /** How long every write has failed, since the first failure after the last committed batch (0: not failing). */
  failingForMs: number;
  /** The latest write error while failing. */
  lastError?: string;
  /** Presence updates waiting or being written (at most one waiting per gateway; see `presence`). */
  presencePending: number;
  /** `push` calls waiting for room in the full queue (each an event whose gateway waits for its acknowledgement). */
  pushesWaiting: number;
}

export interface StorageQueueStats {
  stored: number;
  duplicates: number;
  upserts: number;
  analyses: number;
  errors: number;
  batches: number;
}

/** A gateway's presence update waiting for a writer; `at`: when it was first queued (ms), kept when a newer update replaces it. */
interface PendingPresence {
  update: PresenceUpdate;
  at: number;
}

/**
 * The bounded queue between fan-out and storage. Writers drain it in batches (one transaction
 * per batch); a failing database is retried with backoff while jobs wait, so a slow or down
 * database delays storage (and gateways' acknowledgements), never fan-out. `push` waits while
 * the queue is full.
 *
 * `writers` batches may be in flight at once (PostgreSQL: each on its own pooled connection), so
 * the database works on one batch while this process builds the next; with one writer they took
 * turns (bench/relay.bench.ts). Batches may commit in any order, but their jobs resolve in queue
 * order (an MQTT broker acknowledges a client's publishes in the order it sent them), and
 * everything a batch writes is safe to commit out of order: events are keyed by id, machine and
 * presence updates only move forward in time, and an `analysis.started` never overwrites a
 * finished analysis (relay/src/storage/sql-storage.ts).
 *
 * Presence updates (relay/src/ingest/presence.ts) are not jobs of the bounded queue: nobody waits
 * for them, and pushed fire-and-forget into a full queue during a database outage each waited in
 * memory for room, without bound (gateways reconnecting on flaky links: hundreds of thousands),
 * and then were written in front of the events. They wait here at most one per gateway, the
 * latest (storage keeps only the latest anyway, `setGatewayPresences`), and each batch a writer
 * takes carries those waiting with it; a failed batch is retried with them, so none is lost while
 * the relay runs.
 */
export class StorageQueue {
  readonly stats: StorageQueueStats = { stored: 0, duplicates: 0, upserts: 0, analyses: 0, errors: 0, batches: 0 };
  #queue: Pending[] = [];
  /** Jobs taken by a writer and not yet resolved (they still count towards `max`). */
  #inFlight = 0;
  /** Presence updates waiting for a batch, one per gateway, oldest first (a Map keeps insertion order). */
  #presence = new Map<string, PendingPresence>();
  /** Presence updates taken by a writer and not yet written. */
  #presenceInFlight = 0;
  #writers = 0;
  /** Resolves once the jobs of every batch taken so far have been resolved: the next batch resolves after it. */
  #resolved: Promise<void> = Promise.resolve();
  #spaceWaiters: (() => void)[] = [];
  #closed = false;
  #idle: (() => void)[] = [];
  /** When each batch being written was queued, by its oldest job (ms). */
  #inFlightSince: number[] = [];
  #lastBatchAt: number | undefined;
  #failing: { since: number; error: string } | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly opts: {
      max: number;
      batchMax: number;
      writers?: number;
      logger: Logger;
      /** How long close() waits for what is queued to be written (default 10 s; see close). */
      closeGraceMs?: number;
      /** The clock of `health` (ms; default Date.now). */
      now?: () => number;
    },
  ) {}

  /** Jobs and presence updates waiting or being written. */
  get depth(): number {
    return this.#jobs + this.#presence.size + this.#presenceInFlight;
  }

  /** Jobs waiting or being written: what `max` bounds. */
  get #jobs(): number {
    return this.#queue.length + this.#inFlight;
  }

  /**
   * Whether writes keep up: a database that answers a ping but refuses every write (disk full, a
   * read-only replica after a failover) shows here, not in the ping (relay/src/http/routes/health.ts).
   */
  health(): StorageQueueHealth {
    const now = this.#now();
    const oldest = Math.min(this.#queue[0]?.at ?? Infinity, this.#presence.values().next().value?.at ?? Infinity, ...this.#inFlightSince);
    return {
      ...(this.#lastBatchAt !== undefined ? { lastBatchAt: this.#lastBatchAt } : {}),
      oldestWaitingMs: oldest === Infinity ? 0 : Math.max(0, now - oldest),
      failingForMs: this.#failing ? Math.max(0, now - this.#failing.since) : 0,
      ...(this.#failing ? { lastError: this.#failing.error } : {}),
      presencePending: this.#presence.size + this.#presenceInFlight,
      pushesWaiting: this.#spaceWaiters.length,
    };
  }

  async push(job: StorageJob): Promise<'stored' | 'duplicate'> {
    while (this.#jobs >= this.opts.max && !this.#closed) await new Promise<void>((r) => this.#spaceWaiters.push(r));
    return new Promise((resolve) => {
      this.#queue.push({ job, resolve, at: this.#now() });
      this.#startWriters();
    });
  }

  /**
   * A gateway's online/offline as of `at`, written with the next batch. It replaces the one
   * still waiting for the same gateway unless that one is newer, as storage would (an update
   * older than the stored one changes nothing); it never waits for room.
   */
  presence(update: PresenceUpdate): void {
    const prev = this.#presence.get(update.id);
    if (prev && prev.update.at > update.at) return;
    // Set on an existing key keeps its place: the first entry stays the longest waiting (health).
    this.#presence.set(update.id, { update: { ...update }, at: prev?.at ?? this.#now() });
    this.#startWriters();
  }

  /** Resolves once everything queued so far is written. */
  async flush(): Promise<void> {
    if (this.depth === 0 && this.#writers === 0) return;
    await new Promise<void>((r) => this.#idle.push(r));
  }

  /**
   * Writes what is queued, waiting at most `closeGraceMs`; then stops, and a failing database is
   * retried no more. What is left unwritten stays unresolved, so its publishes are never
   * acknowledged and the gateways send them again (to another instance). Waiting for the flush
   * without a bound kept a relay told to stop during a database outage running until killed.
   */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((r) => (timer = setTimeout(r, this.opts.closeGraceMs ?? 10_000)));
    await Promise.race([this.flush(), grace]);
    clearTimeout(timer);
    this.#closed = true;
    for (const w of this.#spaceWaiters.splice(0)) w();
    const presence = this.#presence.size + this.#presenceInFlight;
    if (this.depth > 0) this.opts.logger.warn({ unwritten: this.depth - presence, presenceUnwritten: presence }, 'storage queue closed with events unwritten; their gateways send them again');
  }

  #now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  #startWriters(): void {
    const max = Math.max(1, this.opts.writers ?? 1);
    while (this.#writers < max && (this.#queue.length > 0 || this.#presence.size > 0)) {
      this.#writers++;
      void this.#writer();
    }
  }

  async #writer(): Promise<void> {
    while (this.#queue.length > 0 || this.#presence.size > 0) {
      const batch = this.#queue.splice(0, this.opts.batchMax);
      // The longest-waiting presence updates, at most batchMax, as when they were jobs of the queue:
      // taking every one waiting made a batch's UPDATE as large as the instance's share of the
      // fleet (thousands while a killed instance's gateways reconnect, bench/fleet.bench.ts), and
      // the events taken with it waited for all of it.
      const presence: PendingPresence[] = [];
      for (const [id, p] of this.#presence) {
        if (presence.length >= this.opts.batchMax) break;
        presence.push(p);
        this.#presence.delete(id);
      }
      this.#inFlight += batch.length;
      this.#presenceInFlight += presence.length;
      const since = Math.min(batch[0]?.at ?? Infinity, presence[0]?.at ?? Infinity);
      this.#inFlightSince.push(since);
      const before = this.#resolved;
      let done!: () => void;
      this.#resolved = new Promise<void>((r) => (done = r));
      const results = await this.#writeUntilStored(batch, presence.map((p) => p.update));
      await before;
      if (results) this.#settle(batch, results);
      this.#inFlight -= batch.length;
      this.#presenceInFlight -= presence.length;
      this.#inFlightSince.splice(this.#inFlightSince.indexOf(since), 1);
      done();
      for (const w of this.#spaceWaiters.splice(0, batch.length)) w();
      // Closed while the database was failing: stop here, the rest stays unwritten.
      if (!results) break;
    }
    this.#writers--;
    if (this.#writers === 0 && this.depth === 0) for (const r of this.#idle.splice(0)) r();
  }

  /**
   * Writes a batch and the presence updates taken with it, retrying with backoff until stored;
   * undefined when the queue closed meanwhile (its jobs stay unresolved). Events committed by an
   * attempt whose presence write then failed are not written again: their "stored" stands (a
   * second recordEvents would report them as duplicates).
   */
  async #writeUntilStored(batch: Pending[], presence: PresenceUpdate[]): Promise<('stored' | 'duplicate')[] | undefined> {
    let results: ('stored' | 'duplicate')[] | undefined;
    for (let failures = 0; ; ) {
      try {
        results ??= batch.length > 0 ? await this.storage.recordEvents(batch.map((p) => ({ event: p.job.event, effects: p.job.effects }))) : [];
        // At most one update per gateway, a statement per chunk (storage ignores one older than the stored).
        if (presence.length > 0) await this.storage.setGatewayPresences(presence);
        this.#lastBatchAt = this.#now();
        this.#failing = undefined;
        return results;
      } catch (err) {
        this.stats.errors++;
        this.#failing = { since: this.#failing?.since ?? this.#now(), error: (err as Error).message };
        const backoff = retryDelay(failures++, WRITE_RETRY);
        this.opts.logger.error({ err: (err as Error).message, depth: this.depth, retryInMs: backoff }, 'storage write failed; retrying');
        await new Promise((r) => setTimeout(r, backoff));
        if (this.#closed) return undefined;
      }
    }
  }

  #settle(batch: Pending[], results: ('stored' | 'duplicate')[]): void {
    this.stats.batches++;
    let i = 0;
    for (const p of batch) {
      const r = results[i++] ?? 'stored';
      if (r === 'stored') {
        this.stats.stored++;
        if (p.job.effects.machine) this.stats.upserts++;
        if (p.job.effects.analysis) this.stats.analyses++;
      } else this.stats.duplicates++;
      p.resolve(r);
    }
  }
}
