/**
 * The uplink outbox's part of the SQLite writer thread (sqlite/writer-thread.ts): its SQL
 * only (appends, then deletes, then counters and the outbox clock, in one transaction per batch); batching,
 * replies and close are serveGroupCommits' (sqlite/group-commit-worker.ts).
 */
import type { MessagePort } from 'node:worker_threads';
import { serveGroupCommits } from '../sqlite/group-commit-worker.js';
import { openOutboxDb, type OutboxBatch } from './outbox-db.js';

export function serve(port: MessagePort, data: unknown): void {
  const { file, durability } = data as { file: string; durability: 'full' | 'normal' };
  const db = openOutboxDb(file, durability);
  const insert = db.prepare('INSERT INTO outbox (seq, id, type, payload, bytes, enqueued_at, queued_clock) VALUES (@seq, @id, @type, @payload, @bytes, @enqueuedAt, @queuedClock)');
  const remove = db.prepare('DELETE FROM outbox WHERE seq = ?');
  const setCounter = db.prepare('INSERT INTO outbox_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');

  serveGroupCommits<OutboxBatch>(
    port,
    db,
    (b) => {
      for (const r of b.appends) insert.run(r);
      for (const s of b.deletes) remove.run(s);
      for (const [k, v] of Object.entries(b.counters)) setCounter.run(k, v);
      setCounter.run('clockMs', b.clockMs);
    },
    // A shut-down gateway may be powered off or copied: leave one file, not a WAL beside it.
    { checkpointOnClose: true },
  );
}
