/**
 * Writer thread of the uplink outbox: applies each group commit (appends, then deletes,
 * then counters) in one SQLite transaction, so the fsync never runs on the event loop
 * that receives bus events and PUBACKs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { openOutboxDb, type OutboxCounters, type OutboxRow } from './outbox-db.js';

export interface OutboxBatch {
  batch: number;
  appends: OutboxRow[];
  deletes: number[];
  counters: OutboxCounters;
}

const { file, durability } = workerData as { file: string; durability: 'full' | 'normal' };
const db: Database.Database = openOutboxDb(file, durability);
const insert = db.prepare('INSERT INTO outbox (seq, id, type, payload, bytes, enqueued_at) VALUES (@seq, @id, @type, @payload, @bytes, @enqueuedAt)');
const remove = db.prepare('DELETE FROM outbox WHERE seq = ?');
const setCounter = db.prepare('INSERT INTO outbox_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
const apply = db.transaction((b: OutboxBatch) => {
  for (const r of b.appends) insert.run(r);
  for (const s of b.deletes) remove.run(s);
  for (const [k, v] of Object.entries(b.counters)) setCounter.run(k, v);
});

parentPort!.on('message', (msg: OutboxBatch | 'close') => {
  if (msg === 'close') {
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    parentPort!.postMessage({ closed: true });
    return;
  }
  const t0 = performance.now();
  try {
    apply(msg);
    parentPort!.postMessage({ batch: msg.batch, ms: performance.now() - t0 });
  } catch (err) {
    // The code (SQLITE_FULL, SQLITE_IOERR_*) tells the outbox a full disk from a bug.
    parentPort!.postMessage({ batch: msg.batch, error: (err as Error).message, code: (err as { code?: unknown }).code });
  }
});
