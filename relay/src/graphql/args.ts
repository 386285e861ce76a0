import { TuError } from '@tu/shared';
import { z } from 'zod';
import { DEFAULT_PAGE, MAX_PAGE, RECENT_EVENTS_DEFAULT } from './connection.js';

/**
 * The one rule for the arguments the GraphQL fields share (schema.ts), checked before a resolver
 * uses them, by the argument's name, so every field that takes one (the connections, nested
 * ones included, recentEvents) refuses the same values the same way:
 * - `first` is 1..MAX_PAGE. A page size outside it was clamped on the connections, so
 *   `machines(first: 0)` answered one row with hasNextPage true, while recentEvents refused it;
 *   the refusal names the range, so the caller can fix the query.
 */
const page = z
  .number()
  .int()
  .min(1, { error: `must be 1..${MAX_PAGE}` })
  .max(MAX_PAGE, { error: `must be 1..${MAX_PAGE}` })
  .nullish();

const shared = z.looseObject({ first: page });

/** What `first` means when left out, said in the refusal. */
const defaultPage = (field: string) => (field === 'recentEvents' ? RECENT_EVENTS_DEFAULT : DEFAULT_PAGE);

/**
 * The arguments of `field` if they keep the rule, otherwise INVALID_REQUEST naming each bad
 * argument, what it must be and what it was.
 */
export function checkedArgs<T extends object>(field: string, raw: T): T {
  const r = shared.safeParse(raw);
  if (r.success) return raw;
  const problems = r.error.issues.map((i) => {
    const name = String(i.path[0] ?? 'arguments');
    const given = JSON.stringify((raw as Record<string, unknown>)[name])?.slice(0, 64);
    const dflt = name === 'first' ? `; leave it out for ${defaultPage(field)}` : '';
    return `${name} ${i.message}${dflt} (it is ${given})`;
  });
  throw new TuError('INVALID_REQUEST', `${field}: ${problems.join('; ')}`);
}
