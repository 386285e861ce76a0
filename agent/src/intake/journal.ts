import { openSqlite } from '../sqlite.js';
import type { AnyEvent } from '@tu/shared';

export interface JournalEntry {
  analysisId: string;
  event: AnyEvent;
  acceptedAt: number;
}

/**
 * Intake journal: uploads answered 202 but not yet known to the orchestrator. One row per
 * upload (insert on accept, delete once acknowledged), synchronous=FULL so a 202 survives
 * power loss. Stays as small as the number of unacknowledged uploads: O(1) per upload.
 */
export interface IntakeJournal {
  add(entry: JournalEntry): void;
  remove(analysisId: string): void;
  all(): JournalEntry[];
  size(): number;
  close(): void;
}

export function openIntakeJournal(file: string): IntakeJournal {
  const db = openSqlite(file, { durability: 'full' });
  db.exec('CREATE TABLE IF NOT EXISTS intake_journal (analysis_id TEXT PRIMARY KEY, event TEXT NOT NULL, accepted_at INTEGER NOT NULL)');
  const ins = db.prepare<[string, string, number]>('INSERT OR REPLACE INTO intake_journal (analysis_id, event, accepted_at) VALUES (?, ?, ?)');
  const del = db.prepare<[string]>('DELETE FROM intake_journal WHERE analysis_id = ?');
  const all = db.prepare<[], { analysis_id: string; event: string; accepted_at: number }>('SELECT analysis_id, event, accepted_at FROM intake_journal ORDER BY accepted_at');
  const count = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM intake_journal');
  return {
    add: (e) => void ins.run(e.analysisId, JSON.stringify(e.event), e.acceptedAt),
    remove: (id) => void del.run(id),
    all: () => all.all().map((r) => ({ analysisId: r.analysis_id, event: JSON.parse(r.event) as AnyEvent, acceptedAt: r.accepted_at })),
    size: () => count.get()!.n,
    close: () => db.close(),
  };
}
