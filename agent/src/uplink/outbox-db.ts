import type Database from 'better-sqlite3';
import { openSqlite } from '../sqlite.js';
import type { LimitSource } from './event-limit.js';
import type { UndeliverableEntry } from './undeliverable.js';

/** One outbox row: an event waiting for the relay's PUBACK. */
export interface OutboxRow {
  seq: number;
  id: string;
  type: string;
  payload: string;
  bytes: number;
  /** Wall-clock time it was queued (a record; it can be years off on a gateway whose clock was not yet set). */
  enqueuedAt: number;
  /** The outbox's own clock when it was queued (outbox.ts, "Age"): what its expiry is counted on. */
  queuedClock: number;
}

/** Counters kept with the queue, so they survive restarts. */
export interface OutboxCounters {
  lastSeq: number;
  delivered: number;
  dropped: number;
  refused: number;
  expired: number;
  /** Events set aside as too large for the relay, ever (outbox.ts `setAside`); those still kept are the table `undeliverable`. */
  setAside: number;
}

/** A committed outbox row moved to `undeliverable`, with why. */
export interface SetAsideMove {
  seq: number;
  reason: string;
  limitBytes: number;
  limitBy: LimitSource;
  at: number;
}

/** A set-aside row put back at the tail of the queue: `from` its seq in `undeliverable`, `seq` its new one. */
export interface Requeue {
  from: number;
  seq: number;
  queuedClock: number;
}

/**
 * One group commit of the outbox's writer thread (outbox-worker.ts), in this order: appends,
 * moves to `undeliverable`, moves back, deletes (queue), deletes (set aside), then counters and
 * the outbox clock. The order lets one batch hold a row's move and its later fate.
 */
export interface OutboxBatch {
  appends: OutboxRow[];
  setAside: SetAsideMove[];
  requeues: Requeue[];
  deletes: number[];
  asideDeletes: number[];
  counters: OutboxCounters;
  clockMs: number;
}

export const COUNTER_KEYS = ['lastSeq', 'delivered', 'dropped', 'refused', 'expired', 'setAside'] as const;

/**
 * The outbox table: `seq` (INTEGER PRIMARY KEY, the rowid) orders delivery, so append,
 * head and delete are B-tree operations, O(log n) ~ O(1) whatever the backlog.
 * WAL; `full` durability fsyncs every commit (power loss), `normal` survives crashes only.
 * `undeliverable`: events set aside because the relay would refuse them (too large, outbox.ts
 * `setAside`), whole, with why; outside the queue, so the events behind them go on. A file from
 * before it existed gets the table when opened.
 */
export function openOutboxDb(file: string, durability: 'full' | 'normal', readonly = false): Database.Database {
  const db = openSqlite(file, { durability, readonly, schema: `
      CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        enqueued_at INTEGER NOT NULL,
        queued_clock INTEGER
      );
      CREATE TABLE IF NOT EXISTS outbox_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS undeliverable (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        enqueued_at INTEGER NOT NULL,
        reason TEXT NOT NULL,
        limit_bytes INTEGER NOT NULL,
        limit_by TEXT NOT NULL,
        set_aside_at INTEGER NOT NULL
      );
    ` });
  // An outbox written before queued_clock existed gets the column; its rows (NULL) count as
  // queued when the outbox is opened (outbox.ts): kept longer, never expired early.
  if (!readonly && !db.prepare<[], { name: string }>('PRAGMA table_info(outbox)').all().some((c) => c.name === 'queued_clock')) {
    db.exec('ALTER TABLE outbox ADD COLUMN queued_clock INTEGER');
  }
  return db;
}

/** The outbox clock's last written value (outbox_meta key `clockMs`), 0 for a new outbox. */
export function readClock(db: Database.Database): number {
  return db.prepare<[], { value: number }>("SELECT value FROM outbox_meta WHERE key = 'clockMs'").get()?.value ?? 0;
}

export function readCounters(db: Database.Database): OutboxCounters {
  const rows = db.prepare<[], { key: string; value: number }>('SELECT key, value FROM outbox_meta').all();
  const c: OutboxCounters = { lastSeq: 0, delivered: 0, dropped: 0, refused: 0, expired: 0, setAside: 0 };
  for (const r of rows) if ((COUNTER_KEYS as readonly string[]).includes(r.key)) c[r.key as keyof OutboxCounters] = r.value;
  return c;
}

/** The events set aside, oldest first, without their payloads. */
export function readUndeliverable(db: Database.Database): UndeliverableEntry[] {
  return db
    .prepare<[], Omit<UndeliverableEntry, 'limitBy'> & { limitBy: string }>('SELECT seq, id, type, bytes, reason, limit_bytes AS limitBytes, limit_by AS limitBy, set_aside_at AS at FROM undeliverable ORDER BY seq')
    .all()
    .map((r) => ({ ...r, limitBy: r.limitBy === 'relay' ? 'relay' : 'config' }));
}
