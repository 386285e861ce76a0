/**
 * Writer thread of the orchestrator's state store: applies batches of row upserts in
 * one SQLite transaction each, so fsync never runs on the bus's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { openStateDb, type StoreRow } from './store-db.js';

interface Batch {
  seq: number;
  rows: (StoreRow | { id: string; close: true })[];
}

const { file, durability } = workerData as { file: string; durability: 'full' | 'normal' };
const db: Database.Database = openStateDb(file, durability);
const upsert = db.prepare(
  `INSERT INTO analyses (id, status, open, created_at, updated_at, state) VALUES (@id, @status, @open, @createdAt, @updatedAt, @state)
   ON CONFLICT(id) DO UPDATE SET status = excluded.status, open = excluded.open, updated_at = excluded.updated_at, state = excluded.state`,
);
const close = db.prepare('UPDATE analyses SET open = 0 WHERE id = ?');
const apply = db.transaction((rows: Batch['rows']) => {
  for (const r of rows) {
    if ('close' in r) close.run(r.id);
    else upsert.run(r);
  }
});

parentPort!.on('message', (msg: Batch | 'close') => {
  if (msg === 'close') {
    db.close();
    parentPort!.postMessage({ closed: true });
    return;
  }
  const t0 = performance.now();
  try {
    apply(msg.rows);
    parentPort!.postMessage({ seq: msg.seq, ms: performance.now() - t0 });
  } catch (err) {
    // The code (SQLITE_FULL, SQLITE_IOERR_*) tells the store a full disk from a bug.
    parentPort!.postMessage({ seq: msg.seq, error: (err as Error).message, code: (err as { code?: unknown }).code });
  }
});
