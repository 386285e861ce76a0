/**
 * The state store's part of the SQLite writer thread (sqlite/writer-thread.ts): its SQL only;
 * batching, replies and close are serveGroupCommits' (sqlite/group-commit-worker.ts).
 */
import type { MessagePort } from 'node:worker_threads';
import { serveGroupCommits } from '../sqlite/group-commit-worker.js';
import { openStateDb, type StoreBatch } from './store-db.js';

export function serve(port: MessagePort, data: unknown): void {
  const { file, durability } = data as { file: string; durability: 'full' | 'normal' };
  const db = openStateDb(file, durability);
  const upsert = db.prepare(
    `INSERT INTO analyses (id, status, open, created_at, updated_at, state) VALUES (@id, @status, @open, @createdAt, @updatedAt, @state)
     ON CONFLICT(id) DO UPDATE SET status = excluded.status, open = excluded.open, updated_at = excluded.updated_at, state = excluded.state`,
  );
  const close = db.prepare('UPDATE analyses SET open = 0 WHERE id = ?');

  serveGroupCommits<StoreBatch>(port, db, (rows) => {
    for (const r of rows) {
      if ('close' in r) close.run(r.id);
      else upsert.run(r);
    }
  });
}
