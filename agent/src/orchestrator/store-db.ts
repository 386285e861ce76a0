import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export interface StoreRow {
  id: string;
  status: string;
  open: 0 | 1;
  createdAt: number;
  updatedAt: number;
  state: string;
}

/**
 * One row per analysis (O(1) I/O per analysis whatever the history size), WAL mode;
 * `full` durability fsyncs every commit so state survives power loss.
 */
export function openStateDb(file: string, durability: 'full' | 'normal', readonly = false): Database.Database {
  if (!readonly) fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file, readonly ? { readonly: true, fileMustExist: true } : {});
  db.pragma('busy_timeout = 5000');
  if (!readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
    db.exec(`
      CREATE TABLE IF NOT EXISTS analyses (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        open INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        state TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS analyses_open ON analyses (open) WHERE open = 1;
      CREATE INDEX IF NOT EXISTS analyses_created ON analyses (created_at);
    `);
  }
  return db;
}
