import type Database from 'better-sqlite3';
import { openSqlite } from '../sqlite.js';

/** The journal's file format (intake.sqlite), shared by the reader on the main thread and the writer thread. */
export const JOURNAL_SCHEMA = 'CREATE TABLE IF NOT EXISTS intake_journal (analysis_id TEXT PRIMARY KEY, event TEXT NOT NULL, accepted_at INTEGER NOT NULL)';

/** synchronous=FULL: a committed entry survives power loss (a 202 is only answered after its commit). */
export const openJournalDb = (file: string): Database.Database => openSqlite(file, { durability: 'full', schema: JOURNAL_SCHEMA });

/** One commit of the writer thread: rows added (event as JSON text) and analyses removed. */
export interface JournalBatch {
  seq: number;
  add: { id: string; event: string; at: number }[];
  remove: string[];
}

export type JournalReply = { seq: number; ms: number } | { seq: number; error: string; code?: string } | { closed: true };
