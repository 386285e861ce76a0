import type { FastifyError, FastifyInstance } from 'fastify';
import { ERROR_CODES, TuError, type ErrorCode } from '@tu/shared';
import { HttpError } from '../intake/errors.js';

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

const TU_STATUS: Partial<Record<ErrorCode, number>> = {
  NOT_FOUND: 404,
  NOT_RECOGNISED: 409,
  INVALID_REQUEST: 400,
  IMAGE_DECODE_FAILED: 422,
  SERVICE_DISABLED: 503,
  STORAGE_FAILED: 507,
  BUS_CLOSED: 503,
  BUS_CONNECT_FAILED: 503,
};

/** Any thrown error → HTTP status + `{ error: { code, message } }` with a catalogue code. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof TuError) return new HttpError(TU_STATUS[err.code] ?? 500, err.code, err.message);
  const fe = err as Partial<FastifyError>;
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status === 413) return new HttpError(413, 'UPLOAD_TOO_LARGE');
  if (status === 415) return new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE');
  if (status === 404) return new HttpError(404, 'NOT_FOUND');
  if (status >= 400 && status < 500) return new HttpError(status, 'INVALID_REQUEST', `${ERROR_CODES.INVALID_REQUEST} (${fe.message ?? 'bad request'})`);
  return new HttpError(500, 'INTERNAL_ERROR');
}

export function installErrorHandling(app: FastifyInstance, onRejected: (code: string, url: string) => void): void {
  app.setErrorHandler((err, req, reply) => {
    const h = toHttpError(err);
    if (h.statusCode >= 500) req.log.error({ err }, 'request failed');
    else req.log.warn({ code: h.code, reason: h.message, url: req.url.slice(0, 200) }, 'request refused');
    onRejected(h.code, req.url);
    const body: ErrorBody = { error: { code: h.code, message: h.message } };
    return reply.status(h.statusCode).type('application/json').send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    const body: ErrorBody = { error: { code: 'NOT_FOUND', message: `No route ${req.method} ${req.url.split('?')[0]}` } };
    return reply.status(404).send(body);
  });
}
