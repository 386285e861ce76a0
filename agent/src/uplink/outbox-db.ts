import type Database from 'better-sqlite3';
import { openSqlite } from '../sqlite.js';

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
}

/** One group commit of the outbox's writer thread (outbox-worker.ts): appends, then deletes, then counters and the outbox clock. */
export interface OutboxBatch {
  appends: OutboxRow[];
  deletes: number[];
  counters: OutboxCounters;
  clockMs: number;
}

export const COUNTER_KEYS = ['lastSeq', 'delivered', 'dropped', 'refused', 'expired'] as const;

/**
 * The outbox table: `seq` (INTEGER PRIMARY KEY, the rowid) orders delivery, so append,
 * head and delete are B-tree operations, O(log n) ~ O(1) whatever the backlog.
 * WAL; `full` durability fsyncs every commit (power loss), `normal` survives crashes only.
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
  const c: OutboxCounters = { lastSeq: 0, delivered: 0, dropped: 0, refused: 0, expired: 0 };
  for (const r of rows) if ((COUNTER_KEYS as readonly string[]).includes(r.key)) c[r.key as keyof OutboxCounters] = r.value;
  return c;
}
