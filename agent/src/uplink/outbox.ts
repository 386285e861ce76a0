import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { TuError, type Clock, type Logger, type TimerHandle } from '@tu/shared';
import { isStorageError } from '../fs/storage-guard.js';
import { openOutboxDb, readCounters, type OutboxCounters, type OutboxRow } from './outbox-db.js';
import type { OutboxBatch } from './outbox-worker.js';
import { EntryRing } from './ring.js';

/** Backoff of a batch write that failed on a full disk (ms). */
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;

export type WhenFull = 'drop-oldest' | 'refuse-new';

export interface OutboxOptions {
  file: string;
  durability: 'full' | 'normal';
  maxEvents: number;
  maxBytes: number;
  maxAgeMs: number;
  whenFull: WhenFull;
  clock: Clock;
  logger: Logger;
}

export interface OutboxStats extends OutboxCounters {
  depth: number;
  bytes: number;
  /** Enqueue time (clock ms) of the oldest undelivered event, undefined when empty. */
  oldestAt: number | undefined;
  commits: number;
  lastCommitMs: number;
  /** Highest seq committed to disk (only committed rows are sent). */
  committedSeq: number;
  full: boolean;
  /** The last write error while a batch waits to be written again (full disk); undefined: writes go through. */
  retrying: string | undefined;
  writeRetries: number;
}

export type AppendResult = { accepted: true; seq: number; committed: Promise<void> } | { accepted: false; reason: 'refused' };

/**
 * Durable, bounded, ordered queue of events for the relay (DESIGN §5).
 *
 * - append() is synchronous and never blocks on disk: rows are group-committed by a
 *   worker thread (one transaction, one fsync per batch with `full` durability); the
 *   returned promise resolves once the row is on disk.
 * - Only committed rows are handed to the forwarder (peek), so nothing is sent that a
 *   crash could "un-queue".
 * - ack(seq) deletes a delivered row (batched the same way).
 * - Limits: maxEvents / maxBytes with the configured policy (drop-oldest | refuse-new),
 *   maxAgeMs (expired); every drop/refusal/expiry is counted (persisted) and logged.
 */
export class Outbox {
  readonly #opts: OutboxOptions;
  readonly #log: Logger;
  readonly #reader: Database.Database;
  readonly #peek: Database.Statement<[number, number, number], OutboxRow>;
  readonly #worker: Worker;
  readonly #subjects: Database.Statement<[], { s: unknown }>;
  readonly #ring = new EntryRing();
  /** Delivered out of order (not at the head yet). */
  readonly #ackedAhead = new Set<number>();
  readonly #counters: OutboxCounters;
  readonly #listeners = new Set<() => void>();
  #pending: { appends: OutboxRow[]; deletes: number[]; waiters: { resolve: () => void; reject: (e: Error) => void }[] } = { appends: [], deletes: [], waiters: [] };
  #inFlight: { batch: number; lastSeq: number; msg: OutboxBatch; waiters: { resolve: () => void; reject: (e: Error) => void }[] } | undefined;
  readonly #writeErrorListeners = new Set<(err: Error) => void>();
  #retrying: string | undefined;
  #writeRetries = 0;
  #retryDelay = RETRY_MIN_MS;
  #retryTimer: TimerHandle | undefined;
  #batch = 0;
  #scheduled = false;
  #committedSeq: number;
  #commits = 0;
  #lastCommitMs = 0;
  #fatal: Error | undefined;
  #full = false;
  #expiryTimer: TimerHandle | undefined;
  #closed = false;

  private constructor(opts: OutboxOptions, reader: Database.Database, worker: Worker, counters: OutboxCounters) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'uplink-outbox' });
    this.#reader = reader;
    this.#worker = worker;
    this.#counters = counters;
    this.#committedSeq = counters.lastSeq;
    this.#peek = reader.prepare<[number, number, number], OutboxRow>(
      'SELECT seq, id, type, payload, bytes, enqueued_at AS enqueuedAt FROM outbox WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?',
    );
    this.#subjects = reader.prepare<[], { s: unknown }>("SELECT DISTINCT json_extract(payload, '$.subject') AS s FROM outbox");
    worker.on('message', (m: { batch?: number; ms?: number; error?: string; closed?: boolean }) => this.#onCommitted(m));
    worker.on('error', (err) => this.#fail(err));
  }

  static async open(opts: OutboxOptions): Promise<Outbox> {
    // Schema first, then the reader and the writer thread.
    const init = openOutboxDb(opts.file, opts.durability);
    const counters = readCounters(init);
    const rows = init.prepare<[], { seq: number; bytes: number; at: number }>('SELECT seq, bytes, enqueued_at AS at FROM outbox ORDER BY seq').all();
    init.close();
    const reader = openOutboxDb(opts.file, opts.durability, true);
    const worker = new Worker(new URL('./outbox-worker.js', import.meta.url), {
      workerData: { file: opts.file, durability: opts.durability },
    });
    const last = rows.length ? rows[rows.length - 1]!.seq : 0;
    const ob = new Outbox(opts, reader, worker, { ...counters, lastSeq: Math.max(counters.lastSeq, last) });
    for (const r of rows) ob.#ring.push(r.seq, r.bytes, r.at);
    ob.#expire();
    ob.#armExpiry();
    if (rows.length) ob.#log.info({ depth: ob.#ring.size, bytes: ob.#ring.bytes }, 'outbox recovered undelivered events');
    return ob;
  }

  get stats(): OutboxStats {
    return {
      ...this.#counters,
      depth: this.#ring.size - this.#ackedAhead.size,
      bytes: this.#ring.bytes,
      oldestAt: this.#ring.headAt(),
      commits: this.#commits,
      lastCommitMs: this.#lastCommitMs,
      committedSeq: this.#committedSeq,
      full: this.#full,
      retrying: this.#retrying,
      writeRetries: this.#writeRetries,
    };
  }

  /** Called after every commit (new rows may be ready to send). */
  onCommit(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Subjects (analysis ids) of the events not yet delivered to the relay, committed or not:
   * the storage quota never evicts what they refer to. O(depth); called only when evicting.
   */
  undeliveredSubjects(): Set<string> {
    const out = new Set<string>();
    for (const r of this.#subjects.all()) if (typeof r.s === 'string') out.add(r.s);
    for (const r of [...(this.#inFlight?.msg.appends ?? []), ...this.#pending.appends]) {
      try {
        const subject = (JSON.parse(r.payload) as { subject?: unknown }).subject;
        if (typeof subject === 'string') out.add(subject);
      } catch {
        // Not JSON: nothing it could refer to.
      }
    }
    return out;
  }

  /** Told about every failed write (the agent's storage guard turns a full disk into 507 at the door). */
  onWriteError(fn: (err: Error) => void): () => void {
    this.#writeErrorListeners.add(fn);
    return () => this.#writeErrorListeners.delete(fn);
  }

  /** Writes a batch parked by a full disk now (called once space returns). */
  retryNow(): void {
    if (this.#retryTimer) this.#opts.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#inFlight && this.#retrying !== undefined && !this.#closed) this.#worker.postMessage(this.#inFlight.msg);
  }

  /** Queues one event (its JSON as on the bus). Synchronous; `committed` resolves once it is on disk. */
  append(event: { id: string; type: string }, payload: string): AppendResult {
    if (this.#closed) throw new TuError('UPLINK_OUTBOX_FAILED', 'outbox is closed');
    if (this.#fatal) throw this.#fatal;
    const now = this.#opts.clock.now();
    this.#expire(now);
    const bytes = Buffer.byteLength(payload);
    const { maxEvents, maxBytes, whenFull } = this.#opts;
    if (bytes > maxBytes) return this.#refuse(event, `event larger than uplink.outbox.maxBytes (${bytes} > ${maxBytes})`);
    const fits = () => this.#ring.size - this.#ackedAhead.size + 1 <= maxEvents && this.#ring.bytes + bytes <= maxBytes;
    if (!fits()) {
      if (whenFull === 'refuse-new') return this.#refuse(event, 'outbox full');
      let dropped = 0;
      while (!fits() && this.#dropHead()) dropped++;
      this.#counters.dropped += dropped;
      this.#noteFull('dropped', dropped, event);
    } else if (this.#full) {
      this.#full = false;
      this.#log.info({ depth: this.stats.depth }, 'outbox has room again');
    }
    const seq = ++this.#counters.lastSeq;
    this.#ring.push(seq, bytes, now);
    this.#pending.appends.push({ seq, id: event.id, type: event.type, payload, bytes, enqueuedAt: now });
    const committed = new Promise<void>((resolve, reject) => this.#pending.waiters.push({ resolve, reject }));
    this.#schedule();
    this.#armExpiry();
    return { accepted: true, seq, committed };
  }

  /** Committed rows after `afterSeq`, in order (skips rows dropped or delivered meanwhile). */
  peek(afterSeq: number, limit: number): OutboxRow[] {
    const head = this.#ring.headSeq();
    if (head === undefined || limit <= 0) return [];
    const from = Math.max(afterSeq, head - 1);
    if (from >= this.#committedSeq) return [];
    return this.#peek.all(from, this.#committedSeq, limit).filter((r) => !this.#ackedAhead.has(r.seq));
  }

  /** The relay acknowledged `seq` (PUBACK): delete it. Idempotent; unknown/dropped seqs are ignored. */
  ack(seq: number): void {
    const head = this.#ring.headSeq();
    if (head === undefined || seq < head || seq > this.#counters.lastSeq || this.#ackedAhead.has(seq)) return;
    this.#counters.delivered++;
    if (seq === head) {
      this.#ring.shift();
      for (let h = this.#ring.headSeq(); h !== undefined && this.#ackedAhead.delete(h); h = this.#ring.headSeq()) this.#ring.shift();
    } else {
      this.#ackedAhead.add(seq);
    }
    this.#pending.deletes.push(seq);
    this.#schedule();
  }

  /** Drops expired events now (also runs on append and on a clock timer). */
  expireNow(): number {
    return this.#expire();
  }

  /** Flushes pending writes (resolves when on disk). */
  async flush(): Promise<void> {
    if (this.#pending.appends.length === 0 && this.#pending.deletes.length === 0 && !this.#inFlight) return;
    const p = new Promise<void>((resolve, reject) => this.#pending.waiters.push({ resolve, reject }));
    this.#schedule();
    await p;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (!this.#fatal) {
        // On a full disk the unwritten rows are left (the events are re-sent from their sources on start).
        const flushed = this.flush().then(() => true);
        while (!(await Promise.race([flushed, new Promise<false>((r) => setTimeout(() => r(false), 50))])) && this.#retrying === undefined);
      }
    } catch (err) {
      this.#log.warn({ err }, 'outbox flush on close failed');
    }
    this.#closed = true;
    if (this.#retryTimer) this.#opts.clock.clearTimeout(this.#retryTimer);
    if (this.#expiryTimer) this.#opts.clock.clearTimeout(this.#expiryTimer);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      this.#worker.once('message', () => {
        clearTimeout(t);
        resolve();
      });
      this.#worker.postMessage('close');
    });
    await this.#worker.terminate();
    this.#reader.close();
  }

  #refuse(event: { id: string; type: string }, why: string): AppendResult {
    this.#counters.refused++;
    this.#noteFull('refused', 1, event, why);
    this.#schedule(); // persist the counter
    return { accepted: false, reason: 'refused' };
  }

  #noteFull(kind: 'dropped' | 'refused', n: number, event: { id: string; type: string }, why = 'outbox full'): void {
    const total = this.#counters[kind];
    // Log when the outbox becomes full, then every 1000 losses (never silently, never a flood).
    if (!this.#full || Math.floor(total / 1000) !== Math.floor((total - n) / 1000)) {
      this.#log.warn(
        { code: 'UPLINK_OUTBOX_FULL', policy: this.#opts.whenFull, kind, total, depth: this.stats.depth, bytes: this.#ring.bytes, eventId: event.id, type: event.type, why },
        `uplink outbox full: ${kind} ${total} event(s) so far`,
      );
    }
    this.#full = true;
  }

  #dropHead(): boolean {
    const e = this.#ring.shift();
    if (!e) return false;
    this.#pending.deletes.push(e.seq);
    for (let h = this.#ring.headSeq(); h !== undefined && this.#ackedAhead.delete(h); h = this.#ring.headSeq()) this.#ring.shift();
    return true;
  }

  #expire(now = this.#opts.clock.now()): number {
    const limit = now - this.#opts.maxAgeMs;
    let n = 0;
    for (let at = this.#ring.headAt(); at !== undefined && at < limit; at = this.#ring.headAt()) {
      if (!this.#dropHead()) break;
      n++;
    }
    if (n) {
      this.#counters.expired += n;
      this.#log.warn({ expired: n, total: this.#counters.expired, maxAgeMs: this.#opts.maxAgeMs }, `uplink outbox: ${n} undelivered event(s) expired`);
      this.#schedule();
    }
    return n;
  }

  #armExpiry(): void {
    if (this.#expiryTimer || this.#closed) return;
    const at = this.#ring.headAt();
    if (at === undefined) return;
    const delay = Math.max(0, at + this.#opts.maxAgeMs - this.#opts.clock.now()) + 1;
    this.#expiryTimer = this.#opts.clock.setTimeout(() => {
      this.#expiryTimer = undefined;
      if (this.#closed) return;
      this.#expire();
      this.#armExpiry();
    }, delay);
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => this.#flushBatch());
  }

  #flushBatch(): void {
    this.#scheduled = false;
    if (this.#inFlight || this.#fatal) return;
    const p = this.#pending;
    if (p.appends.length === 0 && p.deletes.length === 0 && p.waiters.length === 0 && this.#lastWrittenCounters === this.#countersKey()) return;
    this.#pending = { appends: [], deletes: [], waiters: [] };
    const lastSeq = p.appends.length ? p.appends[p.appends.length - 1]!.seq : this.#committedSeq;
    const msg: OutboxBatch = { batch: this.#batch + 1, appends: p.appends, deletes: p.deletes, counters: { ...this.#counters } };
    this.#inFlight = { batch: ++this.#batch, lastSeq, msg, waiters: p.waiters };
    this.#lastWrittenCounters = this.#countersKey();
    this.#worker.postMessage(msg);
  }

  #lastWrittenCounters = '';
  #countersKey(): string {
    const c = this.#counters;
    return `${c.lastSeq}/${c.delivered}/${c.dropped}/${c.refused}/${c.expired}`;
  }

  #onCommitted(m: { batch?: number; ms?: number; error?: string; code?: string; closed?: boolean }): void {
    if (m.closed || !this.#inFlight || m.batch !== this.#inFlight.batch) return;
    if (m.error) {
      const err = new TuError('UPLINK_OUTBOX_FAILED', `outbox write failed: ${m.error}`, { cause: Object.assign(new Error(m.error), { code: m.code }) });
      for (const fn of this.#writeErrorListeners) fn(err);
      if (isStorageError(err) && !this.#closed) {
        // A full disk is not fatal: the batch stays in flight (its transaction was rolled back),
        // new events wait in memory within maxEvents/maxBytes, and it is written again with backoff.
        if (this.#retrying === undefined) this.#log.error({ err: m.error, code: 'UPLINK_OUTBOX_FAILED' }, 'uplink outbox write failed on a full disk; retrying');
        this.#retrying = m.error;
        this.#writeRetries++;
        this.#retryTimer = this.#opts.clock.setTimeout(() => this.retryNow(), this.#retryDelay);
        this.#retryDelay = Math.min(RETRY_MAX_MS, this.#retryDelay * 2);
        return;
      }
    }
    const done = this.#inFlight;
    this.#inFlight = undefined;
    if (this.#retrying !== undefined) this.#log.warn({ retries: this.#writeRetries }, 'uplink outbox writes go through again');
    this.#retrying = undefined;
    this.#retryDelay = RETRY_MIN_MS;
    if (m.error) return this.#fail(new TuError('UPLINK_OUTBOX_FAILED', `outbox write failed: ${m.error}`), done.waiters);
    this.#commits++;
    this.#lastCommitMs = m.ms ?? 0;
    this.#committedSeq = Math.max(this.#committedSeq, done.lastSeq);
    for (const w of done.waiters) w.resolve();
    for (const fn of this.#listeners) fn();
    this.#schedule();
  }

  #fail(err: Error, waiters: { reject: (e: Error) => void }[] = []): void {
    this.#fatal = err instanceof TuError ? err : new TuError('UPLINK_OUTBOX_FAILED', err.message, { cause: err });
    this.#log.error({ err: this.#fatal.message, code: 'UPLINK_OUTBOX_FAILED' }, 'uplink outbox write failed');
    for (const w of [...waiters, ...this.#pending.waiters]) w.reject(this.#fatal);
    this.#pending.waiters = [];
  }

  get error(): Error | undefined {
    return this.#fatal;
  }
}

