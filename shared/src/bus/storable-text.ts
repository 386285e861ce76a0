/**
 * Where a decoded message holds text that storage cannot keep: a NUL character (PostgreSQL's
 * text and jsonb refuse it) or an unpaired UTF-16 surrogate (valid in a JSON escape such as
 * "\ud800", refused by jsonb and by any UTF-8 encoder). Both arrive only as `\u` escapes, since raw
 * control characters are not valid JSON and raw surrogates cannot be valid UTF-8, so a payload
 * without one (`hasEscapes` false) is not walked at all.
 *
 * Refusing such a message where it enters (decodeInbound) keeps it out of every store; on the
 * relay one such event otherwise failed its whole storage batch again and again, and the events
 * of every other gateway queued behind it.
 */
export function unstorableTextAt(value: unknown, path = '$'): string | undefined {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? path : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = unstorableTextAt(value[i], `${path}[${i}]`);
      if (at) return at;
    }
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      const at = unstorableTextAt(k, `${path}.<key>`) ?? unstorableTextAt(v, `${path}.${k}`);
      if (at) return at;
    }
  }
  return undefined;
}

/** A NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
const UNSTORABLE = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Whether JSON text holds a `\u` escape, the only way such text can arrive (see unstorableTextAt). */
export const hasEscapes = (json: string): boolean => json.includes('\\u');
