/**
 * Text that no store keeps: a NUL character (PostgreSQL's text and jsonb refuse it) or an unpaired
 * UTF-16 surrogate (valid in a JSON escape such as "\ud800", refused by jsonb and by any UTF-8
 * encoder). With the `u` flag a proper pair is one code point, so only an unpaired half matches
 * \p{Cs}.
 *
 * Refused where messages and requests enter (decodeInbound; the relay's GraphQL request guard):
 * on the relay one such gateway event failed its whole storage batch again and again, and the
 * events of every other gateway queued behind it; in a GraphQL argument it surfaced as a raw
 * database error.
 */
// eslint-disable-next-line no-control-regex -- the NUL is what is looked for
const UNSTORABLE = /[\u0000\p{Cs}]/u;

export const isUnstorableText = (s: string): boolean => UNSTORABLE.test(s);

/**
 * The path (`$.data.machineId`, `variables.filter.name`) of the first string or object key under
 * `value` that holds such text, or undefined. Iterative: a payload of `[[[[...` nests far deeper
 * than the stack allows a recursive walk.
 */
export function unstorableTextAt(value: unknown, root = '$'): string | undefined {
  const todo: [unknown, string][] = [[value, root]];
  for (let next = todo.pop(); next; next = todo.pop()) {
    const [v, at] = next;
    if (typeof v === 'string') {
      if (UNSTORABLE.test(v)) return at;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) todo.push([v[i], `${at}[${i}]`]);
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        if (UNSTORABLE.test(k)) return `${at} (a key)`;
        todo.push([x, `${at}.${k}`]);
      }
    }
  }
  return undefined;
}

/**
 * Whether JSON text holds a `\u` escape: the only way such text can arrive in JSON, since raw
 * control characters are not valid JSON and raw surrogates cannot be valid UTF-8. A payload
 * without one need not be walked.
 */
export const hasEscapes = (json: string): boolean => json.includes('\\u');

// eslint-disable-next-line no-control-regex -- the NUL is what is replaced
const UNSTORABLE_ALL = /[\u0000\p{Cs}]/gu;

/**
 * `text` fit for a bounded text field of a message (a failure reason's message, at most 2000
 * characters): every NUL and unpaired surrogate becomes U+FFFD, and the cut at `max` UTF-16 code
 * units never splits a surrogate pair. Every receiver refuses a message holding either
 * (decodeInbound), so a handler's error text holding one, or a cut through an emoji, made the
 * step's `*.failed` event vanish: the step then failed as a timeout, its real reason lost, and an
 * `analysis.failed` cut that way reached no one (test/orchestrator.robustness.test.ts).
 */
export function boundedText(text: string, max: number): string {
  const clean = UNSTORABLE.test(text) ? text.replace(UNSTORABLE_ALL, '\ufffd') : text;
  if (clean.length <= max) return clean;
  const cut = clean.slice(0, max);
  return /[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut;
}
