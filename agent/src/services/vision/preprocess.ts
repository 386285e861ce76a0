/**
 * Image → model input. sharp pipeline: header check against the pixel limit,
 * EXIF auto-orientation, alpha flattened onto white, forced sRGB, resize to
 * 224x224 (JPEG/WebP shrink-on-load kicks in automatically because the resize
 * is part of the same pipeline), raw RGB bytes → Float32 in [0,1].
 */
import { stat } from 'node:fs/promises';
import sharp, { type Metadata, type OutputInfo, type SharpOptions } from 'sharp';
import { ImageError } from './errors.js';
import { INPUT_SIZE } from './model.js';

/** cover = centre crop keeping aspect; fill = stretch the whole image; contain = letterbox. */
export type FitMode = 'cover' | 'fill' | 'contain';
export const FIT_MODES: readonly FitMode[] = ['cover', 'fill', 'contain'];
export const DEFAULT_MAX_PIXELS = 50e6;

export interface PreprocessOptions {
  fit?: FitMode;
  /** Refuse images whose header declares more pixels than this (decompression-bomb guard). */
  maxPixels?: number;
  size?: number;
}

export interface PreprocessedImage {
  /** HWC RGB, length size*size*3, values in [0,1]. */
  data: Float32Array;
  size: number;
  /** Original dimensions after EXIF orientation. */
  width: number;
  height: number;
  format: string;
  decodeMs: number;
}

export type ImageInput = string | Buffer | Uint8Array;

function describe(input: ImageInput): string {
  return typeof input === 'string' ? input : `<buffer ${input.byteLength} bytes>`;
}

function decodeError(input: ImageInput, err: unknown): ImageError {
  const msg = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(msg)) {
    return new ImageError('IMAGE_TOO_LARGE', `image ${describe(input)} exceeds the pixel limit (${msg.trim()})`, { cause: err });
  }
  return new ImageError(
    'IMAGE_DECODE_FAILED',
    `cannot decode image ${describe(input)}: ${msg.trim()}. The file is truncated, corrupt or not a supported image (JPEG, PNG, WebP, TIFF, GIF, AVIF/HEIF)`,
    { cause: err },
  );
}

export async function preprocessImage(input: ImageInput, opts: PreprocessOptions = {}): Promise<PreprocessedImage> {
  const t0 = performance.now();
  const size = opts.size ?? INPUT_SIZE;
  const fit = opts.fit ?? 'cover';
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (typeof input === 'string') {
    try {
      const s = await stat(input);
      if (!s.isFile()) throw new Error('not a regular file');
    } catch (err) {
      throw new ImageError('IMAGE_NOT_FOUND', `image file ${input} not found or unreadable: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  const sharpOpts: SharpOptions = { limitInputPixels: Math.max(1, Math.floor(maxPixels)), failOn: 'error' };
  // Header only: refuse oversize images before any pixel is decoded.
  let meta: Metadata;
  try {
    meta = await sharp(input, sharpOpts).metadata();
  } catch (err) {
    throw decodeError(input, err);
  }
  const w0 = meta.width ?? 0;
  const h0 = meta.height ?? 0;
  if (!w0 || !h0) throw decodeError(input, new Error('image header has no dimensions'));
  // Only the first page/frame is decoded, so width*height is what gets allocated.
  if (w0 * h0 > maxPixels) {
    throw new ImageError(
      'IMAGE_TOO_LARGE',
      `image ${describe(input)} declares ${w0}x${h0} = ${(w0 * h0 / 1e6).toFixed(1)} MP, above the limit of ${(maxPixels / 1e6).toFixed(1)} MP; raise maxPixels if such images are legitimate`,
    );
  }
  const swap = (meta.orientation ?? 1) >= 5;
  const width = swap ? h0 : w0;
  const height = swap ? w0 : h0;
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await sharp(input, sharpOpts)
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .resize(size, size, { fit, position: 'centre', background: { r: 0, g: 0, b: 0 } })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw decodeError(input, err);
  }
  const { data: bytes, info } = raw;
  if (info.width !== size || info.height !== size) {
    throw decodeError(input, new Error(`unexpected output size ${info.width}x${info.height}`));
  }
  const n = size * size;
  const out = new Float32Array(n * 3);
  const ch = info.channels;
  if (ch === 3) {
    for (let i = 0; i < n * 3; i++) out[i] = (bytes[i] ?? 0) / 255;
  } else if (ch === 1) {
    for (let i = 0; i < n; i++) {
      const v = (bytes[i] ?? 0) / 255;
      out[i * 3] = v;
      out[i * 3 + 1] = v;
      out[i * 3 + 2] = v;
    }
  } else {
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[i * 3 + c] = (bytes[i * ch + c] ?? 0) / 255;
  }
  return { data: out, size, width, height, format: meta.format ?? 'unknown', decodeMs: performance.now() - t0 };
}
