/** The minimal SQL surface both engines provide; statements use `?` placeholders. */
export type SqlValue = string | number | null;

export interface Db {
  readonly kind: 'sqlite' | 'postgres';
  all<T>(sql: string, params?: SqlValue[]): Promise<T[]>;
  /** Runs a statement; resolves the number of rows changed. */
  run(sql: string, params?: SqlValue[]): Promise<number>;
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  /** Runs `fn` in one transaction (serialised with every other statement on SQLite). */
  tx<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `?` → `$1, $2, ...` for PostgreSQL (the SQL here has no `?` inside literals). */
export function numberedPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
