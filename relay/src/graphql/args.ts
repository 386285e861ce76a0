import { TuError } from '@tu/shared';
import { z } from 'zod';
import { defaultPageOf, MAX_PAGE } from './connection.js';

/**
 * The one rule for the arguments the GraphQL fields share (schema.ts), checked before a resolver
 * uses them, by the argument's name, so every field that takes one (the connections, nested
 * ones included, recentEvents, typeAccuracy, the analysisEvents subscription) refuses the same
 * values the same way:
 * - `first` is 1..MAX_PAGE. A page size outside it was clamped on the connections, so
 *   `machines(first: 0)` answered one row with hasNextPage true, while recentEvents refused it;
 *   the refusal names the range, so the caller can fix the query.
 * - `gatewayId`, `machineId` and `type` filter by an exact value. An empty one was taken for "no
 *   filter" (the resolvers passed it on and the storage tests it for truth), so `gatewayId: ""`
 *   answered every gateway of the tenant, while recentEvents refused it: an empty filter must
 *   not widen to everything. Leaving the argument out (or null) is how to ask for all. `search`
 *   is not one of them: it matches a substring, and the empty one matches everything by meaning.
 */
const page = z
  .number()
  .int()
  .min(1, { error: `must be 1..${MAX_PAGE}` })
  .max(MAX_PAGE, { error: `must be 1..${MAX_PAGE}` })
  .nullish();

/** The longest filter id recentEvents accepted before it took this rule. */
const MAX_ID = 128;
const filter = (all: string) =>
  z
    .string()
    .min(1, { error: `must not be empty: leave the argument out (or null) for ${all}` })
    .max(MAX_ID, { error: `must be at most ${MAX_ID} characters` })
    .nullish();

const shared = z.looseObject({
  first: page,
  gatewayId: filter("every gateway of the tenant, or give a gateway's id"),
  machineId: filter("every machine, or give a machine's id"),
  type: filter('every type, or give a machine type'),
});

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
    const dflt = name === 'first' ? `; leave it out for ${defaultPageOf(field)}` : '';
    return `${name} ${i.message}${dflt} (it is ${given})`;
  });
  throw new TuError('INVALID_REQUEST', `${field}: ${problems.join('; ')}`);
}
