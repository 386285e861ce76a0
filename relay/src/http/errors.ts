import type { FastifyError, FastifyInstance } from 'fastify';
import { TuError, type ErrorCode } from '@tu/shared';

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

const STATUS: Partial<Record<ErrorCode, number>> = { UNAUTHENTICATED: 401, FORBIDDEN: 403, NOT_FOUND: 404, INVALID_REQUEST: 400, STORAGE_UNAVAILABLE: 503 };

export function sendError(reply: { status(n: number): { type(t: string): { send(b: ErrorBody): unknown } } }, status: number, code: ErrorCode, message: string): unknown {
  return reply.status(status).type('application/json').send({ error: { code, message } });
}

/** Errors → `{ error: { code, message } }` with a catalogue code (fastify style, like the agent). */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | TuError, req, reply) => {
    if (err instanceof TuError) return sendError(reply, STATUS[err.code] ?? 500, err.code, err.message);
    const status = typeof (err as FastifyError).statusCode === 'number' ? (err as FastifyError).statusCode! : 500;
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      return sendError(reply, 500, 'INTERNAL_ERROR', 'Unexpected internal error; see the relay log.');
    }
    return sendError(reply, status, 'INVALID_REQUEST', err.message);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, 404, 'NOT_FOUND', req.url === '/' ? 'The dashboard is not served yet; use POST /graphql (WebSocket /graphql for subscriptions), GET /api/v1/health, GET /metrics.' : `No route ${req.method} ${req.url.split('?')[0]}`),
  );
}
