/**
 * The uplink outbox's part of the SQLite writer thread (sqlite/writer-thread.ts): its SQL
 * only (appends, moves to and from `undeliverable`, deletes, then counters and the outbox clock,
 * in one transaction per batch: OutboxBatch in outbox-db.ts says the order); batching,
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
  // A move is a copy and a delete in the same transaction: the event is in one table or the other, never lost between them.
  const setAside = db.prepare(
    'INSERT INTO undeliverable (seq, id, type, payload, bytes, enqueued_at, reason, limit_bytes, limit_by, set_aside_at) SELECT seq, id, type, payload, bytes, enqueued_at, @reason, @limitBytes, @limitBy, @at FROM outbox WHERE seq = @seq',
  );
  const requeue = db.prepare('INSERT INTO outbox (seq, id, type, payload, bytes, enqueued_at, queued_clock) SELECT @seq, id, type, payload, bytes, enqueued_at, @queuedClock FROM undeliverable WHERE seq = @from');
  const removeAside = db.prepare('DELETE FROM undeliverable WHERE seq = ?');
  const setCounter = db.prepare('INSERT INTO outbox_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');

  serveGroupCommits<OutboxBatch>(
    port,
    db,
    (b) => {
      for (const r of b.appends) insert.run(r);
      for (const m of b.setAside) {
        setAside.run(m);
        remove.run(m.seq);
      }
      for (const r of b.requeues) {
        requeue.run(r);
        removeAside.run(r.from);
      }
      for (const s of b.deletes) remove.run(s);
      for (const s of b.asideDeletes) removeAside.run(s);
      for (const [k, v] of Object.entries(b.counters)) setCounter.run(k, v);
      setCounter.run('clockMs', b.clockMs);
    },
    // A shut-down gateway may be powered off or copied: leave one file, not a WAL beside it.
    { checkpointOnClose: true },
  );
}
