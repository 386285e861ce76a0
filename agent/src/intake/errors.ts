import { ERROR_CODES, type ErrorCode } from '@tu/shared';

/** A refused request: HTTP status, catalogue code and an actionable message. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message?: string,
  ) {
    super(message ?? ERROR_CODES[code]);
    this.name = 'HttpError';
  }
}
