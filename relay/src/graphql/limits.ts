import {
  GraphQLError,
  isObjectType,
  Kind,
  NoSchemaIntrospectionCustomRule,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
  type ValueNode,
} from 'graphql';
import type { ErrorCode } from '@tu/shared';
import type { RelayConfig } from '../config.js';
import { DEFAULT_PAGE, defaultPageOf, MAX_PAGE } from './connection.js';

/**
 * What one GraphQL operation may cost, checked before it runs. Without limits, 1,000 aliases
 * returned 135 MB in 8.5 s, and a 2.9 KB query of nested fragments returned 105 MB and
 * stalled the event loop for 6 s. Every limit is computed with fragments expanded, since a
 * fragment used twice costs twice.
 * - depth: nesting of fields;
 * - aliases: fields requested under another name (the way to ask for the same thing 1,000 times);
 * - cost: the number of values the answer may hold. A field costs 1, a JSON field (results,
 *   steps: kilobytes each) costs JSON_FIELD_COST, and a paged field multiplies what is below
 *   it by its page size (`first`, default DEFAULT_PAGE, at most MAX_PAGE). Every field of the
 *   schema that takes `first` is paged, whether or not the query gives it.
 */
export type GraphqlLimits = RelayConfig['graphql'];

/** JSON scalars hold whole analysis results, and an embedding is 256 numbers: weigh them as such. */
const JSON_FIELD_COST = 20;
const JSON_FIELDS = new Set(['results', 'steps', 'failure', 'data', 'lastPosition', 'embedding']);

interface Tally {
  depth: number;
  aliases: number;
  cost: number;
}

class LimitExceeded extends Error {}

/**
 * The fields that return a list sized by `first` (every field of the schema that takes it), and
 * the size each returns without it. Known by the argument, not by the query: a page queried with
 * neither `first` nor `after` was counted as one value, so nested pages of the default 20 each
 * (20 machines × 20 analyses with their results) passed a limit that refused the same query with
 * `first: 20` written out.
 */
const listFieldsOf = new WeakMap<GraphQLSchema, Map<string, number>>();
function listFields(schema: GraphQLSchema): Map<string, number> {
  let out = listFieldsOf.get(schema);
  if (out) return out;
  out = new Map();
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const f of Object.values(type.getFields())) if (f.args.some((a) => a.name === 'first')) out.set(f.name, defaultPageOf(f.name));
  }
  listFieldsOf.set(schema, out);
  return out;
}

/**
 * The page size a paged field may return. A variable counts as the largest page: the cost
 * depends on the query text alone, so mercurius can cache a query's validation.
 */
function pageArg(value: ValueNode | undefined, byDefault: number): number {
  if (!value) return byDefault;
  if (value.kind === Kind.INT) return Math.min(MAX_PAGE, Math.max(1, Number(value.value)));
  return MAX_PAGE;
}

function measure(doc: DocumentNode, limits: GraphqlLimits, lists: ReadonlyMap<string, number>): Tally {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const tally: Tally = { depth: 0, aliases: 0, cost: 0 };
  // Stops as soon as a limit is passed, so a fragment bomb is never walked to its end.
  const check = () => {
    if (tally.depth > limits.maxDepth || tally.aliases > limits.maxAliases || tally.cost > limits.maxCost) throw new LimitExceeded();
  };
  const walk = (set: SelectionSetNode, depth: number, multiplier: number, seen: readonly string[]): void => {
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        if (sel.name.value.startsWith('__')) continue; // introspection: refused or allowed as a whole
        if (sel.alias) tally.aliases++;
        tally.depth = Math.max(tally.depth, depth);
        tally.cost += multiplier * (JSON_FIELDS.has(sel.name.value) ? JSON_FIELD_COST : 1);
        check();
        if (sel.selectionSet) {
          const first = sel.arguments?.find((a) => a.name.value === 'first');
          const byDefault = lists.get(sel.name.value);
          const paged = byDefault !== undefined || sel.arguments?.some((a) => a.name.value === 'first' || a.name.value === 'after');
          walk(sel.selectionSet, depth + 1, paged ? multiplier * pageArg(first?.value, byDefault ?? DEFAULT_PAGE) : multiplier, seen);
        }
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        walk(sel.selectionSet, depth, multiplier, seen);
      } else {
        const name = sel.name.value;
        const frag = fragments.get(name);
        // A fragment that spreads itself is refused by the spec's own rule; do not loop here.
        if (frag && !seen.includes(name)) walk(frag.selectionSet, depth, multiplier, [...seen, name]);
      }
    }
  };
  for (const d of doc.definitions) if (d.kind === Kind.OPERATION_DEFINITION) walk(d.selectionSet, 1, 1, []);
  return tally;
}

/** The validation rules mercurius runs on every query (HTTP and WebSocket). */
export function graphqlLimitRules(limits: GraphqlLimits): ValidationRule[] {
  const costRule: ValidationRule = (context: ValidationContext) => ({
    Document(doc) {
      try {
        measure(doc, limits, listFields(context.getSchema()));
      } catch (err) {
        if (!(err instanceof LimitExceeded)) throw err;
        context.reportError(
          new GraphQLError(
            `The query asks for too much: at most depth ${limits.maxDepth}, ${limits.maxAliases} aliases and a cost of ${limits.maxCost} (each field 1, JSON fields ${JSON_FIELD_COST}, multiplied by page sizes; a page size given as a variable counts as ${MAX_PAGE}). Ask for fewer fields or smaller pages, and page with \`after\`.`,
            { extensions: { code: 'QUERY_TOO_COMPLEX' satisfies ErrorCode } },
          ),
        );
      }
    },
  });
  return limits.introspection ? [costRule] : [costRule, NoSchemaIntrospectionCustomRule];
}
