import type Database from 'better-sqlite3';
import { openSqlite } from '../sqlite.js';

export interface StoreRow {
  id: string;
  status: string;
  open: 0 | 1;
  createdAt: number;
  updatedAt: number;
  state: string;
}

/** Marks a written row closed (its terminal event was published) without rewriting it. */
export interface CloseRow {
  id: string;
  close: true;
}

/** One transaction of the store's writer thread (store-worker.ts). */
export type StoreBatch = (StoreRow | CloseRow)[];

/**
 * One row per analysis (O(1) I/O per analysis whatever the history size), WAL mode;
 * `full` durability fsyncs every commit so state survives power loss.
 */
export function openStateDb(file: string, durability: 'full' | 'normal', readonly = false): Database.Database {
  return openSqlite(file, { durability, readonly, schema: `
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
    ` });
}
