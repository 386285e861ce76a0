import pg from 'pg';
import { numberedPlaceholders, type Db, type SqlValue } from './db.js';

/** Splits `?schema=NAME` off a postgres:// URL (the schema becomes the search_path). */
export function parsePostgresUrl(url: string): { connectionString: string; schema?: string } {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? undefined;
  u.searchParams.delete('schema');
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`storage.url: schema must match [a-z_][a-z0-9_]*, got ${schema}`);
  return { connectionString: u.toString(), ...(schema ? { schema } : {}) };
}

function wrap(q: { query: pg.Pool['query'] }): Pick<Db, 'all' | 'run' | 'exec'> {
  return {
    async all<T>(sql: string, params: SqlValue[] = []) {
      const r = await q.query(numberedPlaceholders(sql), params);
      return r.rows as T[];
    },
    async run(sql: string, params: SqlValue[] = []) {
      const r = await q.query(numberedPlaceholders(sql), params);
      return r.rowCount ?? 0;
    },
    async exec(sql: string) {
      await q.query(sql);
    },
  };
}

const JSONB_OID = 3802;
/**
 * jsonb columns come back as their JSON text, like SQLite's: the storage parses JSON columns
 * itself (relay/src/storage/sql-storage.ts), the same way on both engines.
 */
const jsonbAsText = ((oid: number, format?: 'text' | 'binary') =>
  oid === JSONB_OID ? (v: string) => v : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser;

/** node-postgres pool; with a schema, it is created if missing and set as every connection's search_path. */
export async function openPostgres(url: string, opts: { max?: number } = {}): Promise<Db> {
  const { connectionString, schema } = parsePostgresUrl(url);
  if (schema) {
    const c = new pg.Client({ connectionString });
    await c.connect();
    try {
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    } catch (err) {
      // Several instances starting at once can race on IF NOT EXISTS: the loser sees a unique
      // violation (23505) or "schema exists" (42P06), and the schema is there either way.
      const code = (err as { code?: string }).code;
      if (code !== '23505' && code !== '42P06') throw err;
    } finally {
      await c.end();
    }
  }
  const pool = new pg.Pool({ connectionString, max: opts.max ?? 10, types: { getTypeParser: jsonbAsText }, ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  pool.on('error', () => undefined); // idle client errors surface on the next query
  const base = wrap(pool);
  return {
    kind: 'postgres',
    ...base,
    async tx<T>(fn: (db: Db) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      const inner: Db = { kind: 'postgres', ...wrap(client as unknown as { query: pg.Pool['query'] }), tx: () => Promise.reject(new Error('nested transaction')), close: async () => undefined };
      try {
        await client.query('BEGIN');
        const out = await fn(inner);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
