import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { moveAside, type SetAside } from './fs/set-aside.js';

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
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
    if (opts.schema) db.exec(opts.schema);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** better-sqlite3's codes for a file that is not, or no longer, a readable database. */
const DAMAGED = new Set(['SQLITE_NOTADB', 'SQLITE_CORRUPT']);

/**
 * openSqlite for a file the gateway can start without (the photo history, the technicians'
 * labels): one found damaged at open is moved aside (fs/set-aside.ts), reported through
 * `onSetAside`, and started anew. Any other error (a full disk, permissions) is thrown as before.
 */
export function openSqliteOrSetAside(file: string, opts: { durability?: Durability; schema?: string; what: string; onSetAside?: (s: SetAside) => void }): Database.Database {
  try {
    return openSqlite(file, opts);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code !== 'string' || !DAMAGED.has(code)) throw err;
    let movedTo: string;
    try {
      movedTo = moveAside(file, { sqlite: true });
    } catch (renameErr) {
      // Another process (a service started beside the agent) moved it first.
      if ((renameErr as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return openSqlite(file, opts);
    }
    opts.onSetAside?.({ what: opts.what, file, movedTo, reason: `${code}: ${(err as Error).message}`, at: new Date().toISOString() });
    return openSqlite(file, opts);
  }
}
