/**
 * The writer-thread half of GroupCommitWriter (group-commit-writer.ts): applies each batch
 * in one SQLite transaction, so the fsync of `full` durability never runs on the event loop
 * that receives bus messages. A user's entry (orchestrator/store-worker.ts,
 * uplink/outbox-worker.ts) runs on the agent's one SQLite writer thread (writer-thread.ts):
 * its `serve` opens its database, prepares its SQL and calls this with its port; the entry
 * names are listed for the release bundle in scripts/release/bundle.ts.
 */
import type { MessagePort } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/** Main thread → worker: one batch, or 'close'. */
export type GroupCommitRequest<B> = { seq: number; batch: B } | 'close';

/** Worker → main thread: a batch committed (`ms`: time in the transaction) or failed, or the database closed. */
export type GroupCommitReply = { seq: number; ms: number } | { seq: number; error: string; code: unknown } | { closed: true };

export interface ServeOptions {
  /** Folds the WAL into the database file on close (a smaller file to open and copy next time). */
  checkpointOnClose?: boolean;
}

export function serveGroupCommits<B>(port: MessagePort, db: Database.Database, apply: (batch: B) => void, opts: ServeOptions = {}): void {
  const transaction = db.transaction(apply);
  const reply = (m: GroupCommitReply) => port.postMessage(m);
  port.on('message', (msg: GroupCommitRequest<B>) => {
    if (msg === 'close') {
      if (opts.checkpointOnClose) db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
      reply({ closed: true });
      return;
    }
    const t0 = performance.now();
    try {
      transaction(msg.batch);
      reply({ seq: msg.seq, ms: performance.now() - t0 });
    } catch (err) {
      // The code (SQLITE_FULL, SQLITE_IOERR_*) tells the writer a full disk from a bug;
      // the transaction was rolled back, so the same batch can be applied again.
      reply({ seq: msg.seq, error: (err as Error).message, code: (err as { code?: unknown }).code });
    }
  });
}
