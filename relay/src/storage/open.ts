import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { TuError } from '@tu/shared';
import { openPostgres, parsePostgresUrl } from './postgres.js';
import { SqlStorage } from './sql-storage.js';
import { openSqlite } from './sqlite.js';
import type { Storage } from './types.js';

/**
 * Opens `sqlite:PATH` or `postgres://...` and applies pending migrations.
 * `existing`: the caller only reads (a CLI listing, a token check), so a SQLite file that is not
 * there, or is not a relay database, is an error naming the path: opening it as usual would
 * create a new empty database (and its directory) at a mistyped path and answer "nothing".
 * Likewise a PostgreSQL `?schema=` (or database) without the relay's tables: not created.
 */
export async function openStorage(url: string, opts: { existing?: boolean } = {}): Promise<Storage> {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    // An empty name is better-sqlite3's temporary database, gone when the process ends.
    if (file.trim() === '') throw new TuError('CONFIG_INVALID', 'storage.url sqlite: needs the path of the database file (sqlite:/var/lib/tu-relay/relay.sqlite); an empty path would be a throwaway database');
    if (opts.existing && file !== ':memory:') requireRelayDatabase(file, url);
  }
  if (opts.existing && /^postgres(ql)?:\/\//.test(url)) await requireRelayPostgres(url);
  try {
    if (url.startsWith('sqlite:')) return await SqlStorage.open(openSqlite(url.slice('sqlite:'.length)));
    if (/^postgres(ql)?:\/\//.test(url)) return await SqlStorage.open(await openPostgres(url));
  } catch (err) {
    throw new TuError('STORAGE_UNAVAILABLE', `cannot open storage ${url.replace(/\/\/[^@/]*@/, '//***@')}: ${(err as Error).message}`, { cause: err });
  }
  throw new TuError('CONFIG_INVALID', `storage.url must be sqlite:PATH or postgres://..., got ${url}`);
}

/** Throws unless `file` is a SQLite database the relay has written (read-only look: creates nothing). */
function requireRelayDatabase(file: string, url: string): void {
  const where = `${path.resolve(file)} (storage.url ${url})`;
  const hint = 'check storage.url (TU_RELAY_STORAGE_URL) or dataDir (TU_RELAY_DATA_DIR); a command that only reads does not create the database (`tenants add` or the relay itself does)';
  if (!fs.existsSync(file)) throw new TuError('STORAGE_UNAVAILABLE', `no relay database at ${where}: ${hint}`);
  let db: Database.Database | undefined;
  let relay: boolean;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    relay = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get() !== undefined;
  } catch (err) {
    throw new TuError('STORAGE_UNAVAILABLE', `cannot read the relay database ${where}: ${(err as Error).message}; ${hint}`, { cause: err });
  } finally {
    db?.close();
  }
  if (!relay) throw new TuError('STORAGE_UNAVAILABLE', `${where} is not a relay database (no schema_migrations table): ${hint}`);
}

/** Throws unless the PostgreSQL database (and `?schema=`) holds the relay's tables; creates nothing. */
async function requireRelayPostgres(url: string): Promise<void> {
  const shown = url.replace(/\/\/[^@/]*@/, '//***@');
  let parsed: ReturnType<typeof parsePostgresUrl>;
  try {
    parsed = parsePostgresUrl(url);
  } catch (err) {
    throw new TuError('CONFIG_INVALID', (err as Error).message, { cause: err });
  }
  const { connectionString, schema } = parsed;
  const c = new pg.Client({ connectionString });
  let found: boolean;
  try {
    await c.connect();
    const r = await c.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [schema ? `${schema}.schema_migrations` : 'schema_migrations']);
    found = r.rows[0]?.t != null;
  } catch (err) {
    throw new TuError('STORAGE_UNAVAILABLE', `cannot open storage ${shown}: ${(err as Error).message}`, { cause: err });
  } finally {
    await c.end().catch(() => undefined);
  }
  if (!found) {
    throw new TuError('STORAGE_UNAVAILABLE', `no relay tables in ${shown}${schema ? ` (schema ${schema})` : ''}: check storage.url (TU_RELAY_STORAGE_URL); a command that only reads does not create them (\`tenants add\` or the relay itself does)`);
  }
}
