/**
 * The intake journal's part of the SQLite writer thread (sqlite/writer-thread.ts): applies
 * each batch of inserts and deletes in one SQLite transaction (synchronous=FULL), so the
 * fsync of a 202's journal entry never runs on the thread that serves HTTP and the bus, and a
 * burst of uploads shares its fsyncs.
 */
import type { MessagePort } from 'node:worker_threads';
import { openJournalDb, type JournalBatch, type JournalReply } from './journal-db.js';

export function serve(port: MessagePort, data: unknown): void {
  const { file } = data as { file: string };
  const db = openJournalDb(file);
  const ins = db.prepare<[string, string, number]>('INSERT OR REPLACE INTO intake_journal (analysis_id, event, accepted_at) VALUES (?, ?, ?)');
  const del = db.prepare<[string]>('DELETE FROM intake_journal WHERE analysis_id = ?');
  const apply = db.transaction((b: JournalBatch) => {
    for (const r of b.add) ins.run(r.id, r.event, r.at);
    for (const id of b.remove) del.run(id);
  });
  const reply = (m: JournalReply): void => port.postMessage(m);

  port.on('message', (msg: JournalBatch | 'close') => {
    if (msg === 'close') {
      db.close();
      reply({ closed: true });
      return;
    }
    const t0 = performance.now();
    try {
      apply(msg);
      reply({ seq: msg.seq, ms: performance.now() - t0 });
    } catch (err) {
      // The code (SQLITE_FULL, SQLITE_IOERR_*) tells the intake a full disk (507) from a bug.
      const code = (err as { code?: unknown }).code;
      reply({ seq: msg.seq, error: (err as Error).message, ...(typeof code === 'string' ? { code } : {}) });
    }
  });
}
