/**
 * Writer thread of the uplink outbox: its SQL only (appends, then deletes, then counters,
 * in one transaction per batch); batching, replies and close are serveGroupCommits'
 * (sqlite/group-commit-worker.ts).
 */
import { workerData } from 'node:worker_threads';
import { serveGroupCommits } from '../sqlite/group-commit-worker.js';
import { openOutboxDb, type OutboxBatch } from './outbox-db.js';

const { file, durability } = workerData as { file: string; durability: 'full' | 'normal' };
const db = openOutboxDb(file, durability);
const insert = db.prepare('INSERT INTO outbox (seq, id, type, payload, bytes, enqueued_at) VALUES (@seq, @id, @type, @payload, @bytes, @enqueuedAt)');
const remove = db.prepare('DELETE FROM outbox WHERE seq = ?');
const setCounter = db.prepare('INSERT INTO outbox_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');

serveGroupCommits<OutboxBatch>(
  db,
  (b) => {
    for (const r of b.appends) insert.run(r);
    for (const s of b.deletes) remove.run(s);
    for (const [k, v] of Object.entries(b.counters)) setCounter.run(k, v);
  },
  // A shut-down gateway may be powered off or copied: leave one file, not a WAL beside it.
  { checkpointOnClose: true },
);
