import fs from 'node:fs';
import path from 'node:path';
import type { Db } from './db.js';

const DIR = path.join(import.meta.dirname, 'migrations');

export interface Migration {
  version: number;
  name: string;
  /** Undefined: portable SQL for both engines; otherwise the one engine this file is for. */
  dialect?: Db['kind'];
  sql: string;
}

/** The advisory lock every relay instance takes before it touches `schema_migrations`. */
const MIGRATION_LOCK = 72738001;

/**
 * Numbered SQL files `NNN_name.sql` (both engines) or `NNN_name.sqlite.sql` /
 * `NNN_name.postgres.sql` (one engine; the same version number for both), in order.
 */
export function loadMigrations(dir = DIR): Migration[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+(\.(sqlite|postgres))?\.sql$/.test(f))
    .sort()
    .map((f) => {
      const m = /^(\d{3})_([a-z0-9_]+)(?:\.(sqlite|postgres))?\.sql$/.exec(f)!;
      return { version: Number(m[1]), name: m[2]!, ...(m[3] ? { dialect: m[3] as Db['kind'] } : {}), sql: fs.readFileSync(path.join(dir, f), 'utf8') };
    });
}

/**
 * Applies the migrations not yet recorded in `schema_migrations`, each in its own transaction.
 * On PostgreSQL an advisory lock keeps several relay instances starting together from racing:
 * also around creating `schema_migrations` itself, since two concurrent
 * `CREATE TABLE IF NOT EXISTS` can both try to create it and one fails.
 */
export async function migrate(db: Db, migrations = loadMigrations()): Promise<number[]> {
  const lock = (t: Db) => (t.kind === 'postgres' ? t.all('SELECT pg_advisory_xact_lock(?)', [MIGRATION_LOCK]) : Promise.resolve([]));
  await db.tx(async (t) => {
    await lock(t);
    await t.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  });
  for (const m of migrations) {
    if (m.dialect && m.dialect !== db.kind) continue;
    await db.tx(async (t) => {
      await lock(t);
      const done = await t.all<{ version: number }>('SELECT version FROM schema_migrations WHERE version = ?', [m.version]);
      if (done.length > 0) return;
      await t.exec(m.sql);
      await t.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, new Date().toISOString()]);
    });
  }
  const rows = await db.all<{ version: number | string }>('SELECT version FROM schema_migrations ORDER BY version');
  return rows.map((r) => Number(r.version));
}
