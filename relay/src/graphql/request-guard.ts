import { GraphQLError, type ValidationRule } from 'graphql';
import { isUnstorableText, TuError, unstorableTextAt, type ErrorCode } from '@tu/shared';

/** Text no store keeps (shared/src/bus/storable-text.ts) in a request: refused with where it is. */
export const unstorableTextRefusal = (at: string): TuError =>
  new TuError('INVALID_REQUEST', `${at.slice(0, 200)} holds a NUL character (\\u0000) or an unpaired UTF-16 surrogate, which the relay's storage can neither hold nor compare; remove it.`);

/**
 * Why an HTTP GraphQL request is refused before it is parsed, or undefined. Only what the
 * dashboard sends is served: POST with a JSON object `{ query, variables, operationName }`
 * (or an application/graphql body, which mercurius turns into `{ query }`).
 * - GET is refused: the dashboard never uses it, and it bypassed the size check below (the
 *   query came from the URL, not the body) and would put queries in access logs.
 * - A query that is not GraphQL text reached mercurius' internals (`{"query":5}` answered
 *   `context.getDocument.definitions is not iterable`; see isJson).
 * - A long query text is refused before it is parsed: parsing and validating a 17 KB query of
 *   aliases held the event loop for ~100 ms. The dashboard's own queries are under 1 KB.
 * - Unstorable text (above) would reach the database and fail there.
 */
/**
 * No GraphQL document is valid JSON, but mercurius reads a query that fails to parse as JSON, to
 * take it as a ready-made syntax tree: `"5"` (what the body schema makes of `{"query":5}`)
 * reached graphql-js as the number 5, and a forged tree would skip the parser altogether.
 */
function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

export function graphqlRequestRefusal(req: { method: string; body: unknown }, maxQueryBytes: number): TuError | undefined {
  if (req.method !== 'POST') return new TuError('INVALID_REQUEST', `${req.method} /graphql is not served: send the operation with POST /graphql and a JSON body { "query": "...", "variables": {...} }.`);
  const body = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return new TuError('INVALID_REQUEST', 'The body of POST /graphql must be one JSON object { "query": "...", "variables": {...} } (Content-Type application/json); batches are not accepted.');
  const { query, variables, operationName } = body as { query?: unknown; variables?: unknown; operationName?: unknown };
  if (typeof query !== 'string' || !query.trim() || isJson(query)) {
    const what = query === undefined ? 'missing' : query === null ? 'null' : typeof query !== 'string' ? `a ${typeof query}` : query.trim() ? 'a JSON value (a number, boolean or JSON text)' : 'empty';
    return new TuError('INVALID_REQUEST', `"query" must be the text of a GraphQL operation, such as "{ gateways { nodes { id } } }"; it is ${what}.`);
  }
  const bytes = Buffer.byteLength(query);
  if (bytes > maxQueryBytes) return new TuError('QUERY_TOO_COMPLEX', `The query text is ${bytes} bytes; at most graphql.maxQueryBytes (${maxQueryBytes}) are accepted. Ask for fewer fields.`);
  const bad = unstorableTextAt(query, 'query') ?? unstorableTextAt(operationName, 'operationName') ?? unstorableTextAt(variables, 'variables');
  return bad === undefined ? undefined : unstorableTextRefusal(bad);
}

/**
 * The same for string literals in the query text, checked once parsed: an escape such as
 * `"a\u0000b"` is plain ASCII in the text and becomes a NUL only in the parsed value.
 */
export const unstorableLiteralRule: ValidationRule = (context) => ({
  StringValue(node) {
    if (isUnstorableText(node.value)) {
      context.reportError(new GraphQLError(unstorableTextRefusal('A string in the query').message, { nodes: node, extensions: { code: 'INVALID_REQUEST' satisfies ErrorCode } }));
    }
  },
});
