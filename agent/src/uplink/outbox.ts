import type Database from 'better-sqlite3';
import { TuError, type Clock, type Logger, type TimerHandle } from '@tu/shared';
import { GroupCommitWriter } from '../sqlite/group-commit-writer.js';
import type { WriterThread } from '../sqlite/writer-thread.js';
import type { TooLarge } from './event-limit.js';
import { openOutboxDb, readClock, readCounters, readUndeliverable, type OutboxBatch, type OutboxCounters, type OutboxRow, type Requeue, type SetAsideMove } from './outbox-db.js';
import { EntryRing } from './ring.js';
import { UndeliverableIndex, type UndeliverableEntry } from './undeliverable.js';

/** Writes not yet handed to the writer thread. */
interface PendingWrites {
  appends: OutboxRow[];
  setAside: SetAsideMove[];
  requeues: Requeue[];
  deletes: number[];
  asideDeletes: number[];
}

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
  /** The agent's SQLite writer thread (sqlite/writer-thread.ts); without it this file starts one of its own. */
  thread?: WriterThread;
}

export interface OutboxStats extends OutboxCounters {
  depth: number;
  bytes: number;
  /** How long the oldest undelivered event has waited, on the outbox clock (see Outbox); undefined when empty. */
  oldestAgeMs: number | undefined;
  commits: number;
  lastCommitMs: number;
  /** Highest seq committed to disk (only committed rows are sent). */
  committedSeq: number;
  full: boolean;
  /** The last write error while a batch waits to be written again (full disk); undefined: writes go through. */
  retrying: string | undefined;
  writeRetries: number;
  /** Events set aside and still kept (table `undeliverable`), their payload bytes, and the last one set aside. */
  undeliverable: number;
  undeliverableBytes: number;
  lastUndeliverable: UndeliverableEntry | undefined;
}

export type AppendResult = { accepted: true; seq: number; committed: Promise<void> } | { accepted: false; reason: 'refused' };

/**
 * How often the outbox clock is written while events wait and nothing else is written: a power
 * cut forgets at most this much of their age.
 */
const CLOCK_WRITE_MS = 5 * 60_000;

/**
 * Durable, bounded, ordered queue of events for the relay (DESIGN §5).
 *
 * - append() is synchronous and never blocks on disk: rows are group-committed by a
 *   worker thread (GroupCommitWriter, sqlite/group-commit-writer.ts: one transaction, one
 *   fsync per batch with `full` durability, full-disk retries); the returned promise
 *   resolves once the row is on disk.
 * - Only committed rows are handed to the forwarder (peek), so nothing is sent that a
 *   crash could "un-queue".
 * - ack(seq) deletes a delivered row (batched the same way).
 * - Limits: maxEvents / maxBytes with the configured policy (drop-oldest | refuse-new),
 *   maxAgeMs (expired); every drop/refusal/expiry is counted (persisted) and logged.
 * - setAside(row) moves a committed row the relay would refuse (too large: event-limit.ts) out of
 *   the queue into the table `undeliverable`, whole and with why, so the rows behind it are sent;
 *   requeue() puts such rows back at the tail once the limit allows them. Set-aside rows count
 *   against maxEvents / maxBytes (they are on disk like the queue: the bounds are what the file
 *   may hold), and when room is needed they go first, oldest first: the relay takes the queued
 *   events, not these. They never expire: waiting is all they can do until the limit changes.
 * - Age: an event's age is counted on the outbox's own clock, the time the outbox has been
 *   open (the injected clock's monotonic time, carried over restarts in outbox_meta), never on
 *   the wall clock. A gateway that boots after a power cut may run with its clock years off
 *   until NTP reaches it, which it cannot while offline, exactly when events queue; had the
 *   expiry used wall time, the jump when NTP set the clock would have expired every one of them
 *   at once, undelivered. Time switched off does not count (the events could not have been
 *   sent then either), and a power cut forgets at most CLOCK_WRITE_MS of it.
 */
export class Outbox {
  readonly #opts: OutboxOptions;
  readonly #log: Logger;
  readonly #reader: Database.Database;
  readonly #peek: Database.Statement<[number, number, number], OutboxRow>;
  readonly #writer: GroupCommitWriter<PendingWrites, OutboxBatch>;
  readonly #ring = new EntryRing();
  readonly #aside = new UndeliverableIndex();
  /** Set-aside events dropped for room since start (they are in `dropped` too). */
  #asideDropped = 0;
  /** Delivered out of order (not at the head yet). */
  readonly #ackedAhead = new Set<number>();
  readonly #counters: OutboxCounters;
  /** The counters as last committed, with the rows they count (committedCounters). */
  #committedCounters: OutboxCounters;
  readonly #listeners = new Set<() => void>();
  readonly #writeErrorListeners = new Set<(err: Error) => void>();
  #committedSeq: number;
  /** The counters as last handed to the writer: a change alone is worth a batch (they survive restarts). */
  #lastWrittenCounters = '';
  #full = false;
  #expiryTimer: TimerHandle | undefined;
  #closed = false;
  /** The outbox clock at open, and the monotonic time then: outbox clock = base + monotonic elapsed since. */
  #clockBase = 0;
  #monoAtOpen: number;
  #clockWrittenAt = 0;
  /** Write the outbox clock with the next batch, however recently it was written (on close). */
  #clockWanted = false;

  private constructor(opts: OutboxOptions, reader: Database.Database, counters: OutboxCounters) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'uplink-outbox' });
    this.#reader = reader;
    this.#counters = counters;
    this.#committedCounters = { ...counters };
    this.#committedSeq = counters.lastSeq;
    this.#monoAtOpen = opts.clock.monotonic();
    this.#peek = reader.prepare<[number, number, number], OutboxRow>(
      'SELECT seq, id, type, payload, bytes, enqueued_at AS enqueuedAt FROM outbox WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?',
    );
    this.#writer = new GroupCommitWriter<PendingWrites, OutboxBatch>({
      entry: new URL('./outbox-worker.js', import.meta.url),
      data: { file: opts.file, durability: opts.durability },
      ...(opts.thread ? { thread: opts.thread } : {}),
      clock: opts.clock,
      policy: {
        empty: () => ({ appends: [], setAside: [], requeues: [], deletes: [], asideDeletes: [] }),
        hasWork: (p) =>
          p.appends.length > 0 || p.setAside.length > 0 || p.requeues.length > 0 || p.deletes.length > 0 || p.asideDeletes.length > 0 || this.#lastWrittenCounters !== this.#countersKey() || this.#clockDue(),
        seal: (p) => {
          this.#lastWrittenCounters = this.#countersKey();
          this.#clockWrittenAt = this.#clockNow();
          this.#clockWanted = false;
          return { ...p, counters: { ...this.#counters }, clockMs: this.#clockWrittenAt };
        },
      },
      writeError: (cause) => new TuError('UPLINK_OUTBOX_FAILED', `outbox write failed: ${cause.message}`, { cause }),
      onWriteError: (err) => {
        for (const fn of this.#writeErrorListeners) fn(err);
      },
      // New events wait in memory within maxEvents/maxBytes while a full disk is retried.
      onRetrying: (err, first) => {
        if (first) this.#log.error({ err: err.message, code: 'UPLINK_OUTBOX_FAILED' }, 'uplink outbox write failed on a full disk; retrying');
      },
      onRecovered: (retries) => this.#log.warn({ retries }, 'uplink outbox writes go through again'),
      onFatal: (err) => this.#log.error({ err: err.message, code: 'UPLINK_OUTBOX_FAILED' }, 'uplink outbox write failed'),
      onCommit: ({ sealed }) => {
        // Only committed rows are handed to the forwarder (peek); rows put back are new rows too.
        const last = sealed.appends[sealed.appends.length - 1];
        if (last) this.#committedSeq = Math.max(this.#committedSeq, last.seq);
        const back = sealed.requeues[sealed.requeues.length - 1];
        if (back) this.#committedSeq = Math.max(this.#committedSeq, back.seq);
        this.#committedCounters = sealed.counters;
        for (const fn of this.#listeners) fn();
      },
    });
  }

  static async open(opts: OutboxOptions): Promise<Outbox> {
    // Schema first, then the reader and the writer thread.
    const init = openOutboxDb(opts.file, opts.durability);
    const counters = readCounters(init);
    const clock = readClock(init);
    const rows = init
      .prepare<[], { seq: number; bytes: number; at: number | null; subject: unknown }>("SELECT seq, bytes, queued_clock AS at, json_extract(payload, '$.subject') AS subject FROM outbox ORDER BY seq")
      .all();
    const aside = readUndeliverable(init);
    init.close();
    const reader = openOutboxDb(opts.file, opts.durability, true);
    const last = Math.max(rows.length ? rows[rows.length - 1]!.seq : 0, aside.length ? aside[aside.length - 1]!.seq : 0);
    const ob = new Outbox(opts, reader, { ...counters, lastSeq: Math.max(counters.lastSeq, last) });
    for (const e of aside) ob.#aside.add(e);
    // Never behind a row's own stamp (a row may be written after the clock's last write).
    ob.#clockBase = rows.reduce((m, r) => Math.max(m, r.at ?? 0), clock);
    ob.#clockWrittenAt = ob.#clockBase;
    // Rows from before the outbox clock existed count as queued now.
    for (const r of rows) ob.#ring.push(r.seq, r.bytes, r.at ?? ob.#clockBase, typeof r.subject === 'string' ? r.subject : undefined);
    ob.#expire();
    ob.#armExpiry();
    if (rows.length) ob.#log.info({ depth: ob.#ring.size, bytes: ob.#ring.bytes }, 'outbox recovered undelivered events');
    if (aside.length) ob.#log.warn({ code: 'UPLINK_EVENT_TOO_LARGE', events: aside.length, bytes: ob.#aside.bytes }, 'outbox holds events set aside as too large for the relay');
    return ob;
  }

  get stats(): OutboxStats {
    return {
      ...this.#counters,
      depth: this.#ring.size - this.#ackedAhead.size,
      bytes: this.#ring.bytes,
      oldestAgeMs: this.#oldestAge(),
      commits: this.#writer.stats.commits,
      lastCommitMs: this.#writer.stats.lastCommitMs,
      committedSeq: this.#committedSeq,
      full: this.#full,
      retrying: this.#writer.stats.retrying,
      writeRetries: this.#writer.stats.writeRetries,
      undeliverable: this.#aside.size,
      undeliverableBytes: this.#aside.bytes,
      lastUndeliverable: this.#aside.latest,
    };
  }

  /**
   * The counters as of the last commit: what a kill -9 leaves on disk, so never more than the
   * next start shows. `stats` counts ahead of the disk (an ack is counted when the relay
   * acknowledges, written with the next group commit, or later while a full disk is retried);
   * exposed, those increments were lost by a crash and tu_uplink_delivered_total read lower
   * after the restart, a counter reset to Prometheus (uplink.ts health, http/routes/metrics.ts).
   */
  get committedCounters(): Readonly<OutboxCounters> {
    return this.#committedCounters;
  }

  /** Called after every commit (new rows may be ready to send). */
  onCommit(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Subjects (analysis ids) of the events not yet delivered to the relay, committed or not: the
   * storage quota never evicts what they refer to. From memory (the ring): the quota asks on
   * every upload while it is over its limit, which is when the relay has been out of reach for
   * long, and reading them from the outbox's JSON took 27 ms per 40 MB of events on x64, on the
   * event loop. Events set aside (setAside) are not among them: the uplink put their thumbnail
   * and embedding into them before they were queued (enrich.ts), so they need no file to be sent
   * later, and a refusal that lasts must not pin photos against the quota.
   */
  undeliveredSubjects(): Set<string> {
    return this.#ring.subjects(new Set<string>());
  }

  /** Told about every failed write (the agent's storage guard turns a full disk into 507 at the door). */
  onWriteError(fn: (err: Error) => void): () => void {
    this.#writeErrorListeners.add(fn);
    return () => this.#writeErrorListeners.delete(fn);
  }

  /** Writes a batch parked by a full disk now (called once space returns). */
  retryNow(): void {
    this.#writer.retryNow();
  }

  /** Queues one event (its JSON as on the bus). Synchronous; `committed` resolves once it is on disk. */
  append(event: { id: string; type: string; subject?: string }, payload: string): AppendResult {
    if (this.#closed) throw new TuError('UPLINK_OUTBOX_FAILED', 'outbox is closed');
    if (this.#writer.error) throw this.#writer.error;
    const now = this.#clockNow();
    this.#expire(now);
    const bytes = Buffer.byteLength(payload);
    const { maxEvents, maxBytes, whenFull } = this.#opts;
    if (bytes > maxBytes) return this.#refuse(event, `event larger than uplink.outbox.maxBytes (${bytes} > ${maxBytes})`);
    const fits = () => this.#ring.size - this.#ackedAhead.size + this.#aside.size + 1 <= maxEvents && this.#ring.bytes + this.#aside.bytes + bytes <= maxBytes;
    if (!fits()) {
      if (whenFull === 'refuse-new') return this.#refuse(event, 'outbox full');
      let dropped = 0;
      // Set-aside events first (see the class comment), then the oldest queued.
      while (!fits() && (this.#dropAside() || this.#dropHead())) dropped++;
      this.#counters.dropped += dropped;
      this.#noteFull('dropped', dropped, event);
    } else if (this.#full) {
      this.#full = false;
      this.#log.info({ depth: this.stats.depth }, 'outbox has room again');
    }
    const seq = ++this.#counters.lastSeq;
    this.#ring.push(seq, bytes, now, event.subject);
    this.#writer.pending.appends.push({ seq, id: event.id, type: event.type, payload, bytes, enqueuedAt: this.#opts.clock.now(), queuedClock: now });
    const committed = this.#writer.commit();
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
    if (!this.#leaveQueue(seq, this.#counters.lastSeq)) return;
    this.#counters.delivered++;
    this.#writer.pending.deletes.push(seq);
    this.#writer.schedule();
  }

  /**
   * Moves committed row `row` out of the queue into `undeliverable` (with why: event-limit.ts),
   * so the rows behind it are sent; counted, kept on disk. False when it is no longer queued
   * (delivered, dropped or set aside meanwhile).
   */
  setAside(row: Pick<OutboxRow, 'seq' | 'id' | 'type' | 'bytes'>, why: TooLarge): boolean {
    if (!this.#leaveQueue(row.seq, this.#committedSeq)) return false;
    const at = this.#opts.clock.now();
    this.#aside.add({ seq: row.seq, id: row.id, type: row.type, bytes: row.bytes, reason: why.reason, limitBytes: why.limitBytes, limitBy: why.limitBy, at });
    this.#counters.setAside++;
    this.#writer.pending.setAside.push({ seq: row.seq, reason: why.reason, limitBytes: why.limitBytes, limitBy: why.limitBy, at });
    this.#writer.schedule();
    return true;
  }

  /**
   * Puts the set-aside events `fits` lets go back at the tail of the queue, oldest first, under
   * new seqs (sent after what is queued now: the relay takes events in any order, effects.ts).
   * Queued again, they age from now (maxAgeMs). Returns how many.
   */
  requeue(fits: (e: UndeliverableEntry) => boolean): number {
    if (this.#closed) return 0;
    const now = this.#clockNow();
    let n = 0;
    for (const e of this.#aside.entries()) {
      if (!fits(e)) continue;
      this.#aside.remove(e.seq);
      const seq = ++this.#counters.lastSeq;
      this.#ring.push(seq, e.bytes, now);
      this.#writer.pending.requeues.push({ from: e.seq, seq, queuedClock: now });
      n++;
    }
    if (n) {
      this.#log.info({ events: n, left: this.#aside.size }, `uplink outbox: ${n} event(s) set aside as too large are queued again (the limit allows them now)`);
      this.#writer.schedule();
      this.#armExpiry();
    }
    return n;
  }

  /** Drops expired events now (also runs on append and on a clock timer). */
  expireNow(): number {
    return this.#expire();
  }

  /** Flushes pending writes (resolves when on disk). */
  async flush(): Promise<void> {
    if (this.#writer.idle) return;
    await this.#writer.commit();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // On a full disk the unwritten rows are left after one more try (the events are re-sent from their sources on start).
    // The waiting events' age goes with them to the next start.
    this.#clockWanted = true;
    await this.#writer.close();
    this.#closed = true;
    if (this.#expiryTimer) this.#opts.clock.clearTimeout(this.#expiryTimer);
    this.#reader.close();
  }

  #refuse(event: { id: string; type: string }, why: string): AppendResult {
    this.#counters.refused++;
    this.#noteFull('refused', 1, event, why);
    this.#writer.schedule(); // persist the counter
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

  /** Takes `seq` out of the queue (ring) if it is there (and at most `maxSeq`); the head moves on past rows already gone. */
  #leaveQueue(seq: number, maxSeq: number): boolean {
    const head = this.#ring.headSeq();
    if (head === undefined || seq < head || seq > maxSeq || this.#ackedAhead.has(seq)) return false;
    if (seq === head) {
      this.#ring.shift();
      for (let h = this.#ring.headSeq(); h !== undefined && this.#ackedAhead.delete(h); h = this.#ring.headSeq()) this.#ring.shift();
    } else {
      this.#ackedAhead.add(seq);
    }
    return true;
  }

  /** Drops the oldest set-aside event for room (counted in `dropped` by the caller, logged here: it is the loss of an event). */
  #dropAside(): boolean {
    const e = this.#aside.oldest();
    if (!e) return false;
    this.#aside.remove(e.seq);
    this.#writer.pending.asideDeletes.push(e.seq);
    // The first, then every 1000th (a relay that refuses most events keeps the outbox full).
    if (this.#asideDropped++ % 1000 === 0) {
      this.#log.warn({ code: 'UPLINK_OUTBOX_FULL', total: this.#asideDropped, eventId: e.id, type: e.type, bytes: e.bytes, setAsideBecause: e.reason }, 'uplink outbox full: dropped an event set aside as too large for the relay, to make room');
    }
    return true;
  }

  #dropHead(): boolean {
    const e = this.#ring.shift();
    if (!e) return false;
    this.#writer.pending.deletes.push(e.seq);
    for (let h = this.#ring.headSeq(); h !== undefined && this.#ackedAhead.delete(h); h = this.#ring.headSeq()) this.#ring.shift();
    return true;
  }

  /** The outbox clock: ms the outbox has been open, over all its runs (see the class comment). */
  #clockNow(): number {
    return this.#clockBase + Math.max(0, this.#opts.clock.monotonic() - this.#monoAtOpen);
  }

  #clockDue(): boolean {
    return this.#ring.size > 0 && (this.#clockWanted || this.#clockNow() - this.#clockWrittenAt >= CLOCK_WRITE_MS);
  }

  #oldestAge(): number | undefined {
    const at = this.#ring.headAt();
    return at === undefined ? undefined : Math.max(0, this.#clockNow() - at);
  }

  #expire(now = this.#clockNow()): number {
    const limit = now - this.#opts.maxAgeMs;
    let n = 0;
    for (let at = this.#ring.headAt(); at !== undefined && at < limit; at = this.#ring.headAt()) {
      if (!this.#dropHead()) break;
      n++;
    }
    if (n) {
      this.#counters.expired += n;
      this.#log.warn({ expired: n, total: this.#counters.expired, maxAgeMs: this.#opts.maxAgeMs }, `uplink outbox: ${n} undelivered event(s) expired`);
      this.#writer.schedule();
    }
    return n;
  }

  #armExpiry(): void {
    if (this.#expiryTimer || this.#closed) return;
    const at = this.#ring.headAt();
    if (at === undefined) return;
    // Wakes when the head expires, or sooner to write the outbox clock while events wait.
    const delay = Math.min(Math.max(0, at + this.#opts.maxAgeMs - this.#clockNow()) + 1, CLOCK_WRITE_MS);
    this.#expiryTimer = this.#opts.clock.setTimeout(() => {
      this.#expiryTimer = undefined;
      if (this.#closed) return;
      this.#expire();
      if (this.#clockDue()) this.#writer.schedule();
      this.#armExpiry();
    }, delay);
  }

  #countersKey(): string {
    const c = this.#counters;
    return `${c.lastSeq}/${c.delivered}/${c.dropped}/${c.refused}/${c.expired}/${c.setAside}`;
  }

  get error(): Error | undefined {
    return this.#writer.error;
  }
}

