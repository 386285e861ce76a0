export type ComparisonErrorCode = 'EMBEDDING_LENGTH_MISMATCH' | 'INVALID_EMBEDDING' | 'INVALID_HASH' | 'IMAGE_DECODE_FAILED';

/** Typed error of the comparison library: stable `code`, actionable message. */
export class ComparisonError extends Error {
  readonly code: ComparisonErrorCode;
  constructor(code: ComparisonErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ComparisonError';
    this.code = code;
  }
}

export class EmbeddingLengthMismatchError extends ComparisonError {
  constructor(a: number, b: number, sha256?: string) {
    super(
      'EMBEDDING_LENGTH_MISMATCH',
      `Embedding lengths differ (${a} vs ${b}${sha256 ? ` for candidate ${sha256}` : ''}). ` +
        'Candidates must be embedded with the same model and version; re-embed the references after a model change.',
    );
    this.name = 'EmbeddingLengthMismatchError';
  }
}
