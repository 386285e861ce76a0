/**
 * Typed errors of the vision library. Every error carries a stable `code`
 * (for logs / API responses) and a message that says what to do about it.
 */
export type VisionErrorCode =
  | 'BACKEND_UNAVAILABLE'
  | 'MODEL_NOT_FOUND'
  | 'MODEL_INVALID'
  | 'IMAGE_NOT_FOUND'
  | 'IMAGE_DECODE_FAILED'
  | 'IMAGE_TOO_LARGE'
  | 'HEAD_INVALID'
  | 'HEAD_MISMATCH'
  | 'TRAINING_DATA_INVALID'
  | 'WORKER_FAILED'
  | 'RECOGNIZER_DISPOSED';

export class VisionError extends Error {
  readonly code: VisionErrorCode;
  constructor(code: VisionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class BackendUnavailableError extends VisionError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BACKEND_UNAVAILABLE', message, options);
  }
}

export class ModelLoadError extends VisionError {
  constructor(code: 'MODEL_NOT_FOUND' | 'MODEL_INVALID', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export class ImageError extends VisionError {
  constructor(
    code: 'IMAGE_NOT_FOUND' | 'IMAGE_DECODE_FAILED' | 'IMAGE_TOO_LARGE',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

export class HeadError extends VisionError {
  constructor(code: 'HEAD_INVALID' | 'HEAD_MISMATCH' | 'TRAINING_DATA_INVALID', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export class WorkerError extends VisionError {
  constructor(code: 'WORKER_FAILED' | 'RECOGNIZER_DISPOSED', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Serialisable form used to carry an error across the worker boundary. */
export interface SerializedVisionError {
  code: VisionErrorCode;
  message: string;
  name: string;
}

export function serializeError(err: unknown): SerializedVisionError {
  if (err instanceof VisionError) return { code: err.code, message: err.message, name: err.name };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'WORKER_FAILED', message: `vision worker failed: ${message}`, name: 'WorkerError' };
}

export function deserializeError(e: SerializedVisionError): VisionError {
  switch (e.code) {
    case 'IMAGE_NOT_FOUND':
    case 'IMAGE_DECODE_FAILED':
    case 'IMAGE_TOO_LARGE':
      return new ImageError(e.code, e.message);
    case 'MODEL_NOT_FOUND':
    case 'MODEL_INVALID':
      return new ModelLoadError(e.code, e.message);
    case 'HEAD_INVALID':
    case 'HEAD_MISMATCH':
    case 'TRAINING_DATA_INVALID':
      return new HeadError(e.code, e.message);
    case 'BACKEND_UNAVAILABLE':
      return new BackendUnavailableError(e.message);
    case 'WORKER_FAILED':
    case 'RECOGNIZER_DISPOSED':
      return new WorkerError(e.code, e.message);
  }
}
