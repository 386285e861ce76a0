/** Error codes raised by the metadata library. */
export type MetadataErrorCode = 'IMAGE_DECODE_FAILED' | 'IMAGE_TOO_LARGE' | 'INVALID_INPUT';

/** Typed error of the metadata library: `code` is stable, `message` says what to do. */
export class MetadataError extends Error {
  readonly code: MetadataErrorCode;
  constructor(code: MetadataErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MetadataError';
    this.code = code;
  }
}

export class ImageDecodeError extends MetadataError {
  constructor(detail: string, cause?: unknown) {
    super(
      'IMAGE_DECODE_FAILED',
      `Image could not be decoded (${detail}). Upload a complete JPEG, PNG or WebP file.`,
      { cause },
    );
    this.name = 'ImageDecodeError';
  }
}

export class ImageTooLargeError extends MetadataError {
  readonly pixels: number;
  readonly maxPixels: number;
  constructor(pixels: number, maxPixels: number) {
    super(
      'IMAGE_TOO_LARGE',
      `Image has ${pixels} pixels, above the limit of ${maxPixels}. ` +
        'Downscale the photo before upload or raise the maxPixels setting.',
    );
    this.name = 'ImageTooLargeError';
    this.pixels = pixels;
    this.maxPixels = maxPixels;
  }
}
