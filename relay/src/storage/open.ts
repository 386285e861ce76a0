import { TuError } from '@tu/shared';
import { openPostgres } from './postgres.js';
import { SqlStorage } from './sql-storage.js';
import { openSqlite } from './sqlite.js';
import type { Storage } from './types.js';

/** Opens `sqlite:PATH` or `postgres://...` and applies pending migrations. */
export async function openStorage(url: string): Promise<Storage> {
  try {
    if (url.startsWith('sqlite:')) return await SqlStorage.open(openSqlite(url.slice('sqlite:'.length)));
    if (/^postgres(ql)?:\/\//.test(url)) return await SqlStorage.open(await openPostgres(url));
  } catch (err) {
    throw new TuError('STORAGE_UNAVAILABLE', `cannot open storage ${url.replace(/\/\/[^@/]*@/, '//***@')}: ${(err as Error).message}`, { cause: err });
  }
  throw new TuError('CONFIG_INVALID', `storage.url must be sqlite:PATH or postgres://..., got ${url}`);
}
