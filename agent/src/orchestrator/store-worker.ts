/**
 * Writer thread of the orchestrator's state store: its SQL only; batching, replies and
 * close are serveGroupCommits' (sqlite/group-commit-worker.ts).
 */
import { workerData } from 'node:worker_threads';
import { serveGroupCommits } from '../sqlite/group-commit-worker.js';
import { openStateDb, type StoreBatch } from './store-db.js';

const { file, durability } = workerData as { file: string; durability: 'full' | 'normal' };
const db = openStateDb(file, durability);
const upsert = db.prepare(
  `INSERT INTO analyses (id, status, open, created_at, updated_at, state) VALUES (@id, @status, @open, @createdAt, @updatedAt, @state)
   ON CONFLICT(id) DO UPDATE SET status = excluded.status, open = excluded.open, updated_at = excluded.updated_at, state = excluded.state`,
);
const close = db.prepare('UPDATE analyses SET open = 0 WHERE id = ?');

serveGroupCommits<StoreBatch>(db, (rows) => {
  for (const r of rows) {
    if ('close' in r) close.run(r.id);
    else upsert.run(r);
  }
});
