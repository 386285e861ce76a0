import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Db, SqlValue } from './db.js';

/**
 * better-sqlite3 in WAL mode. Statements are synchronous; an async mutex keeps a transaction's
 * statements from interleaving with anyone else's (one connection).
 * synchronous=FULL: an acknowledged event survives a power cut of the relay host.
 */
export function openSqlite(file: string, opts: { synchronous?: 'FULL' | 'NORMAL' } = {}): Db {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file);
  // busy_timeout first: switching a fresh file to WAL while another instance migrates it must wait, not fail.
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
  db.pragma('foreign_keys = ON');
  // The dashboard's search and type filter compare lower(column) with text lowercased in
  // JavaScript (sql-storage.ts). SQLite's own lower() folds only A-Z, so "Bagger NORD-SÜD" was not
  // found by "süd", nor even by "SÜD", where PostgreSQL (a UTF-8 locale) found it: lower() is
  // JavaScript's here, the same folding as the text it is compared with.
  db.function('lower', { deterministic: true }, (v: unknown) => (v === null ? null : String(v).toLowerCase()));
  const stmts = new Map<string, Database.Statement>();
  const prepare = (sql: string): Database.Statement => {
    let s = stmts.get(sql);
    if (!s) {
      s = db.prepare(sql);
      if (stmts.size > 500) stmts.clear();
      stmts.set(sql, s);
    }
    return s;
  };
  let lock: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = lock.then(fn, fn);
    lock = next.catch(() => undefined);
    return next;
  };
  const direct: Db = {
    kind: 'sqlite',
    async all<T>(sql: string, params: SqlValue[] = []) {
      return prepare(sql).all(...params) as T[];
    },
    async run(sql: string, params: SqlValue[] = []) {
      return prepare(sql).run(...params).changes;
    },
    async exec(sql: string) {
      db.exec(sql);
    },
    tx: () => Promise.reject(new Error('nested transaction')),
    close: async () => undefined,
  };
  return {
    kind: 'sqlite',
    all: (sql, params) => serial(() => direct.all(sql, params)),
    run: (sql, params) => serial(() => direct.run(sql, params)),
    exec: (sql) => serial(() => direct.exec(sql)),
    tx<T>(fn: (db: Db) => Promise<T>): Promise<T> {
      return serial(async () => {
        db.exec('BEGIN IMMEDIATE');
        try {
          const out = await fn(direct);
          db.exec('COMMIT');
          return out;
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
      });
    },
    close: () => serial(async () => void db.close()),
  };
}
