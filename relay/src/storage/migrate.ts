import fs from 'node:fs';
import path from 'node:path';
import type { Db } from './db.js';

const DIR = path.join(import.meta.dirname, 'migrations');

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Numbered SQL files `NNN_name.sql`, in order. */
export function loadMigrations(dir = DIR): Migration[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f.slice(4, -4), sql: fs.readFileSync(path.join(dir, f), 'utf8') }));
}

/**
 * Applies the migrations not yet recorded in `schema_migrations`, each in its own transaction.
 * On PostgreSQL an advisory lock keeps several relay instances starting together from racing.
 */
export async function migrate(db: Db, migrations = loadMigrations()): Promise<number[]> {
  await db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  for (const m of migrations) {
    await db.tx(async (t) => {
      if (t.kind === 'postgres') await t.all('SELECT pg_advisory_xact_lock(72738001)');
      const done = await t.all<{ version: number }>('SELECT version FROM schema_migrations WHERE version = ?', [m.version]);
      if (done.length > 0) return;
      await t.exec(m.sql);
      await t.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, new Date().toISOString()]);
    });
  }
  const rows = await db.all<{ version: number | string }>('SELECT version FROM schema_migrations ORDER BY version');
  return rows.map((r) => Number(r.version));
}
