import { retryDelay, type Backoff, type Clock, type TimerHandle } from '@tu/shared';
import { isStorageError } from '../fs/storage-guard.js';
import type { GroupCommitReply, GroupCommitRequest } from './group-commit-worker.js';
import type { OpenFailed } from './writer-thread-worker.js';
import { WriterThread, type WriterChannel } from './writer-thread.js';

/**
 * What a user of the writer decides; the rest (batching, one batch in flight, waiters,
 * full-disk retries, close) is the writer's.
 * - `P`: the pending writes, coalesced by the user as it likes (a Map per key for the
 *   orchestrator's store, appends and deletes for the outbox). The user mutates
 *   `writer.pending` directly, then calls `commit()` or `schedule()`.
 * - `B`: the message its worker applies in one transaction (see group-commit-worker.ts).
 */
export interface GroupCommitPolicy<P, B> {
  /** A new, empty set of pending writes. */
  empty(): P;
  /** Whether `pending` holds anything to write (a waiter alone also starts a batch). */
  hasWork(pending: P): boolean;
  /** The batch its worker applies. Called once per batch, when it is handed to the worker. */
  seal(pending: P): B;
}

export interface GroupCommitWriterOptions<P, B> {
  /** The entry, compiled JS (`new URL('./x-worker.js', import.meta.url)`), whose `serve` calls serveGroupCommits. */
  entry: URL;
  /** What the entry's `serve` gets (its file, durability). */
  data: unknown;
  /** The SQLite writer thread to run on, shared with the agent's other files; without it the writer starts (and stops) one of its own. */
  thread?: WriterThread;
  policy: GroupCommitPolicy<P, B>;
  /** Clock of the full-disk retry timer. */
  clock: Clock;
  /** Delays between full-disk retries of one batch (default: 250 ms doubling to 10 s, no jitter). */
  retry?: Backoff;
  /** The user's error for a failed write; `cause` carries SQLite's message and code. */
  writeError(cause: Error & { code?: unknown }): Error;
  /** Told about every failed write, retried or not (the storage guard turns a full disk into 507 at the door). */
  onWriteError?(err: Error): void;
  /** A batch is on disk (called before its waiters resolve). */
  onCommit?(batch: { pending: P; sealed: B; ms: number }): void;
  /** A batch failed on a full disk and waits for a retry; `first`: writes were going through until now. */
  onRetrying?(err: Error, first: boolean): void;
  /** Writes go through again after `retries` full-disk retries. */
  onRecovered?(retries: number): void;
  /** A write failed for good: every waiter, and every later commit(), is rejected with `err`. */
  onFatal?(err: Error): void;
}

export interface GroupCommitStats {
  commits: number;
  lastCommitMs: number;
  /** Batches that failed on a full or failing disk and were kept to be written again. */
  writeRetries: number;
  /** The last write error while a batch waits to be retried (undefined: writes go through). */
  retrying: string | undefined;
}

/** The full-disk backoff when the user gives none. */
export const DEFAULT_WRITE_RETRY: Backoff = { initialDelayMs: 250, maxDelayMs: 10_000, jitter: 0 };

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

interface InFlight<P, B> {
  seq: number;
  pending: P;
  sealed: B;
  waiters: Waiter[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Group commit to SQLite through a writer thread: callers add rows to `pending`
 * synchronously; one batch at a time goes to the worker (rows added meanwhile wait, and
 * coalesce, for the next one); `commit()` resolves once the batch holding the caller's rows
 * is committed (fsynced with `full` durability).
 *
 * A full disk is not fatal: the failed batch (rolled back by the worker) stays in flight and
 * is sent again after the retry backoff, or at once on `retryNow()` (the storage guard calls
 * it when space returns); newer rows keep coalescing behind it. Any other failure is fatal.
 * `close()` drains what is pending, giving a full disk one more try before leaving the rows.
 */
export class GroupCommitWriter<P, B> {
  readonly #o: GroupCommitWriterOptions<P, B>;
  readonly #thread: WriterThread;
  readonly #ownsThread: boolean;
  readonly #channel: WriterChannel;
  readonly #backoff: Backoff;
  #pending: P;
  #waiters: Waiter[] = [];
  #inFlight: InFlight<P, B> | undefined;
  #seq = 0;
  #scheduled = false;
  #closed = false;
  #fatal: Error | undefined;
  #retryTimer: TimerHandle | undefined;
  /** Consecutive full-disk failures of the batch in flight (the retry-policy's retry number). */
  #failures = 0;
  readonly #stats: GroupCommitStats = { commits: 0, lastCommitMs: 0, writeRetries: 0, retrying: undefined };

  constructor(opts: GroupCommitWriterOptions<P, B>) {
    this.#o = opts;
    this.#backoff = opts.retry ?? DEFAULT_WRITE_RETRY;
    this.#pending = opts.policy.empty();
    this.#ownsThread = !opts.thread;
    this.#thread = opts.thread ?? new WriterThread();
    this.#channel = this.#thread.open(opts.entry, opts.data, (err) => this.#fail(opts.writeError(err)));
    this.#channel.port.on('message', (m: GroupCommitReply | OpenFailed) => {
      if ('openFailed' in m) this.#fail(opts.writeError(Object.assign(new Error(m.openFailed), { code: m.code })));
      else this.#onReply(m);
    });
  }

  /** The writes not yet handed to the worker: the user coalesces into this. */
  get pending(): P {
    return this.#pending;
  }

  /** The writes of the batch being written (or waiting for a full-disk retry). */
  get inFlight(): P | undefined {
    return this.#inFlight?.pending;
  }

  get stats(): Readonly<GroupCommitStats> {
    return this.#stats;
  }

  /** The fatal write error, once there is one. */
  get error(): Error | undefined {
    return this.#fatal;
  }

  /** Nothing pending, nothing in flight. */
  get idle(): boolean {
    return !this.#inFlight && this.#waiters.length === 0 && !this.#o.policy.hasWork(this.#pending);
  }

  /**
   * Writes what is pending soon; resolves once the batch holding it is committed. A waiter
   * alone (nothing pending) still gets a batch, so `await commit()` means that everything
   * handed to the writer before is on disk.
   */
  commit(): Promise<void> {
    if (this.#fatal) return Promise.reject(this.#fatal);
    if (this.#closed) return Promise.reject(this.#o.writeError(new Error('the writer is closed')));
    const p = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.schedule();
    return p;
  }

  /** Writes what is pending soon, without waiting for it (deletes, counters). */
  schedule(): void {
    if (this.#scheduled || this.#inFlight || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  /** Sends a batch parked by a full disk again now (same rows, same waiters: it was rolled back). */
  retryNow(): void {
    if (this.#retryTimer) this.#o.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#inFlight && this.#stats.retrying !== undefined && !this.#closed) this.#post(this.#inFlight);
  }

  /** Drains what is pending (on a full disk: one more try, then the rows are left), then closes the database on the writer thread. */
  async close(): Promise<void> {
    if (this.#closed) return;
    while (!this.#fatal && !this.idle) {
      if (this.#stats.retrying !== undefined) {
        this.retryNow();
        await sleep(50);
        if (this.#stats.retrying !== undefined) break;
        continue;
      }
      this.#flush();
      await sleep(1);
    }
    this.#closed = true;
    if (this.#retryTimer) this.#o.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    await new Promise<void>((resolve) => {
      // A thread that died (fatal error) never answers: do not hang the shutdown.
      const t = setTimeout(resolve, 2000);
      this.#channel.port.once('message', () => {
        clearTimeout(t);
        resolve();
      });
      this.#channel.port.postMessage('close' satisfies GroupCommitRequest<B>);
    });
    this.#channel.close();
    if (this.#ownsThread) await this.#thread.close();
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#inFlight || this.#fatal) return;
    if (this.#waiters.length === 0 && !this.#o.policy.hasWork(this.#pending)) return;
    const pending = this.#pending;
    this.#inFlight = { seq: ++this.#seq, pending, sealed: this.#o.policy.seal(pending), waiters: this.#waiters };
    this.#pending = this.#o.policy.empty();
    this.#waiters = [];
    this.#post(this.#inFlight);
  }

  #post(f: InFlight<P, B>): void {
    this.#channel.port.postMessage({ seq: f.seq, batch: f.sealed } satisfies GroupCommitRequest<B>);
  }

  #onReply(m: GroupCommitReply): void {
    if ('closed' in m || !this.#inFlight || m.seq !== this.#inFlight.seq) return;
    const done = this.#inFlight;
    if ('error' in m) {
      const err = this.#o.writeError(Object.assign(new Error(m.error), { code: m.code }));
      this.#o.onWriteError?.(err);
      if (isStorageError(err) && !this.#closed) {
        // The batch stays in flight; newer writes coalesce behind it until the disk has room.
        const first = this.#stats.retrying === undefined;
        this.#stats.writeRetries++;
        this.#stats.retrying = m.error;
        this.#o.onRetrying?.(err, first);
        this.#retryTimer = this.#o.clock.setTimeout(() => this.retryNow(), retryDelay(this.#failures++, this.#backoff));
        return;
      }
      this.#inFlight = undefined;
      this.#recovered();
      this.#fail(err, done.waiters);
      return;
    }
    this.#inFlight = undefined;
    this.#recovered();
    this.#stats.commits++;
    this.#stats.lastCommitMs = m.ms;
    this.#o.onCommit?.({ pending: done.pending, sealed: done.sealed, ms: m.ms });
    for (const w of done.waiters) w.resolve();
    this.schedule();
  }

  #recovered(): void {
    if (this.#stats.retrying !== undefined) this.#o.onRecovered?.(this.#failures);
    this.#stats.retrying = undefined;
    this.#failures = 0;
  }

  #fail(err: Error, waiters: Waiter[] = this.#inFlight?.waiters ?? []): void {
    if (this.#fatal) return;
    this.#fatal = err;
    this.#o.onFatal?.(err);
    for (const w of [...waiters, ...this.#waiters]) w.reject(err);
    this.#waiters = [];
  }
}
