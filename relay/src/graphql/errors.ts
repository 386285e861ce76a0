import type { FastifyBaseLogger } from 'fastify';
import { GraphQLError, type ExecutionResult, type FormattedExecutionResult } from 'graphql';
import { ERROR_CODES, isErrorCode, TuError, type ErrorCode } from '@tu/shared';

/**
 * What a GraphQL client is told about an error (HTTP answers and graphql-ws messages alike):
 * always a catalogue code, and never a raw internal message. A PostgreSQL message such as
 * `invalid byte sequence for encoding "UTF8": 0x00`, or a mercurius internal such as
 * `context.getDocument.definitions is not iterable`, says nothing a client can act on and
 * tells an attacker what runs behind the relay; the original goes to the log instead.
 */
interface ClientError {
  code: ErrorCode;
  message: string;
  /** A fault of the relay (logged as an error with the original), not a refused request. */
  fault: boolean;
}

/** Node's codes for a connection that could not be made or was lost. */
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'SQLITE_CANTOPEN']);
/** PostgreSQL SQLSTATEs of an unreachable or unavailable server: class 08, shutdowns, too many connections. */
const PG_UNAVAILABLE = /^(08...|57P0[123]|53300)$/;
/** node-postgres' own messages when its connection or pool is gone (they carry no code). */
const PG_POOL_GONE = /timeout exceeded when trying to connect|Connection terminated|connection error and is not queryable|Cannot use a pool after calling end|database connection is not open/i;

/**
 * Whether an error means the storage (PostgreSQL or the SQLite file) cannot be reached, as
 * opposed to a fault in a query: the catalogue has STORAGE_UNAVAILABLE for the former but no way
 * to tell the two apart, so the drivers' codes are read here (following `cause`, and the parts
 * of an AggregateError, as a failed connect to several addresses gives).
 */
export function isStorageUnavailable(err: unknown, depth = 0): boolean {
  if (depth > 3 || typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && (NET_CODES.has(e.code) || PG_UNAVAILABLE.test(e.code))) return true;
  if (typeof e.message === 'string' && PG_POOL_GONE.test(e.message)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isStorageUnavailable(x, depth + 1))) return true;
  return isStorageUnavailable(e.cause, depth + 1);
}

/** A 4xx refusal of fastify or mercurius before GraphQL ran (bad JSON, body too large, schema validation). */
const requestStatus = (err: unknown): number | undefined => {
  const s = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof s === 'number' && s >= 400 && s < 500 ? s : undefined;
};

/** `refused`: one of the errors a refused request carries (see expand), about the request by definition. */
function clientErrorOf(e: GraphQLError, refused: boolean, bodyLimitBytes: number): ClientError {
  const orig = e.originalError;
  if (orig instanceof TuError) return { code: orig.code, message: orig.message, fault: false };
  // graphql-js's own errors (syntax, validation, variable coercion) are about the query text and
  // say what to fix; the limit rules (limits.ts) already carry their code.
  if (refused || !orig || orig instanceof GraphQLError) {
    const code = e.extensions?.['code'];
    return { code: isErrorCode(code) ? code : 'INVALID_REQUEST', message: e.message, fault: false };
  }
  const status = requestStatus(orig);
  if (status === 413) return { code: 'PAYLOAD_TOO_LARGE', message: `The GraphQL request body is larger than the ${bodyLimitBytes} bytes the relay accepts; send a shorter query or fewer variables.`, fault: false };
  if (status !== undefined) return { code: 'INVALID_REQUEST', message: `${ERROR_CODES.INVALID_REQUEST.message} (${orig.message.slice(0, 200)})`, fault: false };
  if (isStorageUnavailable(orig)) return { code: 'STORAGE_UNAVAILABLE', message: ERROR_CODES.STORAGE_UNAVAILABLE.message, fault: true };
  return { code: 'INTERNAL_ERROR', message: ERROR_CODES.INTERNAL_ERROR.message, fault: true };
}

/**
 * mercurius hands the real errors of a refused request (validation, variables) inside the
 * originalError of one MER_ERR_GQL_VALIDATION, whose status (400) is the answer's.
 */
function expand(e: GraphQLError): { e: GraphQLError; refused: boolean }[] {
  const inner = (e.originalError as { errors?: unknown } | undefined)?.errors;
  if (requestStatus(e.originalError) === undefined || !Array.isArray(inner)) return [{ e, refused: false }];
  return inner.map((x: unknown) => ({ e: x instanceof GraphQLError ? x : new GraphQLError(x instanceof Error ? x.message : String(x)), refused: true }));
}

type Execution = ExecutionResult & { errors: readonly GraphQLError[]; statusCode?: number };

/**
 * mercurius' errorFormatter (HTTP results, thrown request errors, and graphql-ws data messages):
 * every error gets its catalogue code in `extensions.code` and a message from the catalogue
 * unless it is a TuError's or graphql-js's own. The HTTP status follows mercurius' default: 200
 * when GraphQL ran (graphql-over-http), the refusal's own status (400, 413) when it did not.
 */
export function graphqlErrorFormatter(opts: { bodyLimitBytes: number }) {
  return (execution: Execution, ctx: { reply?: { log: FastifyBaseLogger }; app: { log: FastifyBaseLogger } }): { statusCode: number; response: FormattedExecutionResult } => {
    const log = ctx.reply?.log ?? ctx.app.log;
    const errors = execution.errors.flatMap(expand).map(({ e, refused }) => {
      const c = clientErrorOf(e, refused, opts.bodyLimitBytes);
      if (c.fault) log.error({ err: e.originalError ?? e, code: c.code, path: e.path?.join('.') }, 'graphql operation failed');
      const json = e.toJSON();
      return { ...json, message: c.message, extensions: { ...(json.extensions ?? {}), code: c.code } };
    });
    let statusCode = execution.data ? 200 : (execution.statusCode ?? 200);
    if (!execution.data && execution.statusCode === undefined && errors.length === 1) statusCode = requestStatus(execution.errors[0]?.originalError) ?? 200;
    return { statusCode, response: { data: execution.data ?? null, errors } };
  };
}

/**
 * An error thrown by a subscription's `subscribe`, made fit for the client: mercurius sends it
 * over graphql-ws as is, past the errorFormatter, and graphql-js copies an error's own
 * `extensions` onto the GraphQLError it sends, so the code is put there.
 */
export function subscriptionError(err: unknown, log?: { error: (o: object, m: string) => void }): TuError {
  const tu = err instanceof TuError ? err : new TuError(isStorageUnavailable(err) ? 'STORAGE_UNAVAILABLE' : 'INTERNAL_ERROR', undefined, { cause: err });
  if (!(err instanceof TuError)) log?.error({ err, code: tu.code }, 'graphql subscription failed');
  return Object.assign(tu, { extensions: { code: tu.code } });
}
