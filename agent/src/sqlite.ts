import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export type Durability = 'full' | 'normal';

/**
 * Opens one of the agent's SQLite files (orchestrator state, outbox, intake journal,
 * photo history): WAL; `full` fsyncs every commit (survives power loss), `normal`
 * survives process crashes only. A read-only handle needs the file to exist.
 */
export function openSqlite(file: string, opts: { durability?: Durability; readonly?: boolean; schema?: string } = {}): Database.Database {
  if (opts.readonly) {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    return db;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
  if (opts.schema) db.exec(opts.schema);
  return db;
}
