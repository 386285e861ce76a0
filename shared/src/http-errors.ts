import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ERROR_CODES, TuError, type ErrorCode } from './errors.js';

/** The body of every refused request of the agent and the relay. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** A refusal ready to send: the catalogue code, its status and the message for the person who sees it. */
export interface Refusal {
  status: number;
  code: ErrorCode;
  message: string;
}

export interface ErrorHandlingOptions {
  /**
   * The code for one of fastify's own refusals (by status and URL) where a server knows
   * better than INVALID_REQUEST: the agent's 413 on a photo upload is UPLOAD_TOO_LARGE.
   */
  codeFor?: (status: number, url: string) => ErrorCode | undefined;
  /** Called for every refusal (the agent counts refused uploads for /metrics). */
  onRefused?: (code: ErrorCode, url: string) => void;
}

/**
 * Any thrown error → status, catalogue code and message. A TuError answers with its
 * code's status (shared/src/errors.ts); fastify's own 4xx errors keep their status, with the
 * catalogue code of that status (a body too large, 413 PAYLOAD_TOO_LARGE, as relay/src/graphql/errors.ts answers on /graphql; an unsupported
 * Content-Type, 415 BODY_TYPE_UNSUPPORTED; the rest, such as bad JSON, 400 INVALID_REQUEST), so
 * that a client reading the code and one reading the status agree; anything else is a 500 whose
 * details go to the log, not to the client.
 */
export function toRefusal(err: unknown, url = '', codeFor?: ErrorHandlingOptions['codeFor']): Refusal {
  if (err instanceof TuError) return { status: err.status, code: err.code, message: err.message };
  const fe = err as Partial<FastifyError> | undefined;
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  const mapped = codeFor?.(status, url);
  if (mapped) return { status, code: mapped, message: ERROR_CODES[mapped].message };
  if (status === 404) return { status, code: 'NOT_FOUND', message: ERROR_CODES.NOT_FOUND.message };
  const code: ErrorCode | undefined = status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'BODY_TYPE_UNSUPPORTED' : status >= 400 && status < 500 ? 'INVALID_REQUEST' : undefined;
  if (code) return { status: ERROR_CODES[code].status, code, message: `${ERROR_CODES[code].message} (${fe?.message ?? 'bad request'})` };
  return { status: 500, code: 'INTERNAL_ERROR', message: ERROR_CODES.INTERNAL_ERROR.message };
}

/**
 * Sends a refusal where the error handler cannot be reached: a hook in front of a plugin
 * with its own route error handler (mercurius answers errors as GraphQL results, 200).
 */
export function sendRefusal(reply: FastifyReply, err: TuError): FastifyReply {
  const body: ErrorBody = { error: { code: err.code, message: err.message } };
  return reply.status(err.status).type('application/json').send(body);
}

/**
 * Fastify's `frameworkErrors` option: the refusals fastify makes before routing (an address
 * that is not valid percent-encoded UTF-8, a path parameter over maxParamLength) skip the error
 * handler, and answered `{"error":"Bad Request","code":"FST_ERR_BAD_URL",…}` echoing the whole
 * address, outside the catalogue. Pass it to the Fastify constructor (it cannot be set later).
 */
export function refuseFrameworkError(err: FastifyError, _req: unknown, reply: FastifyReply): FastifyReply {
  const why =
    err.code === 'FST_ERR_BAD_URL'
      ? 'the address is not valid: a part of it is not percent-encoded UTF-8'
      : err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? 'a part of the address is longer than any id this server uses'
        : `the request could not be routed (${String(err.code).slice(0, 40)})`;
  return sendRefusal(reply, new TuError('INVALID_REQUEST', `${ERROR_CODES.INVALID_REQUEST.message} (${why})`));
}

/**
 * The one error handler of both fastify servers (agent/src/http/app.ts, relay/src/app.ts):
 * every refusal is `{ error: { code, message } }` with a catalogue code; unexpected errors
 * are logged as errors with their stack, refusals as warnings with the code.
 */
export function installErrorHandling(app: FastifyInstance, opts: ErrorHandlingOptions = {}): void {
  app.setErrorHandler((err, req, reply) => {
    const r = toRefusal(err, req.url, opts.codeFor);
    const url = req.url.slice(0, 200);
    // A TuError is a foreseen refusal whose message says it all (a 503 UI_NOT_BUILT on every
    // request needs no stack trace); anything else is a fault, logged with its stack.
    if (err instanceof TuError) req.log.warn({ code: r.code, reason: r.message, url, ...(err.cause ? { cause: err.cause } : {}) }, 'request refused');
    else if (r.status >= 500) req.log.error({ err, code: r.code, url }, 'request failed');
    else req.log.warn({ code: r.code, reason: r.message, url }, 'request refused');
    opts.onRefused?.(r.code, req.url);
    const body: ErrorBody = { error: { code: r.code, message: r.message } };
    return reply.status(r.status).type('application/json').send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    const body: ErrorBody = { error: { code: 'NOT_FOUND', message: `No route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}` } };
    return reply.status(404).type('application/json').send(body);
  });
}
