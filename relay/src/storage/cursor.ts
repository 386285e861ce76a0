import { isUnstorableText, TuError } from '@tu/shared';

/** Opaque keyset cursors: base64url of the sort key of the last row of a page. */
export const encodeCursor = (key: string[]): string => Buffer.from(JSON.stringify(key)).toString('base64url');

export function decodeCursor(cursor: string, parts: number): string[] {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    // A forged cursor can hold text the database cannot compare (a NUL): refused like any other.
    if (Array.isArray(v) && v.length === parts && v.every((x) => typeof x === 'string' && !isUnstorableText(x))) return v as string[];
  } catch {
    // fall through
  }
  throw new TuError('INVALID_REQUEST', 'invalid cursor: pass the endCursor of a previous page');
}

/** A LIKE pattern matching `text` anywhere, with LIKE wildcards escaped (ESCAPE '\'). */
export const containsPattern = (text: string): string => `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
