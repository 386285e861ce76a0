/**
 * One bounded decode per image: header check against the pixel limit, then
 * EXIF-orient, shrink-on-load resize to <= ANALYSIS_SIDE and raw RGB pixels.
 * Quality and category both work on this small image.
 */
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { ImageDecodeError, ImageTooLargeError, MetadataError } from './errors.js';
import type { ImageInput } from './types.js';

// Memory: libvips' operation cache keeps decoded pipelines alive and every extra libvips
// thread gets its own glibc malloc arena; on a 2-core gateway neither helps throughput
// (measured in bench/pipeline.bench.ts). Process-wide settings, idempotent.
sharp.cache(false);
sharp.concurrency(1);

export const DEFAULT_MAX_PIXELS = 50e6;
/** Longest side of the analysis image. */
export const ANALYSIS_SIDE = 512;

export interface AnalysisImage {
  /** Displayed size of the original (after EXIF orientation). */
  width: number;
  height: number;
  format: string;
  /** Downscaled, oriented image: width x height x 3 RGB bytes. */
  rgb: Uint8Array;
  /** Same image as luma 0..255 (Rec. 601). */
  luma: Float32Array;
  aw: number;
  ah: number;
  /** The photo's EXIF block as sharp found it (JPEG, PNG, WebP), without its `Exif\0\0` header. */
  exif?: Buffer;
}

export async function decodeForAnalysis(
  input: ImageInput,
  maxPixels: number = DEFAULT_MAX_PIXELS,
): Promise<AnalysisImage> {
  if (typeof input !== 'string' && !Buffer.isBuffer(input)) {
    throw new MetadataError('INVALID_INPUT', 'Image input must be a file path or a Buffer.');
  }
  if (Buffer.isBuffer(input) && input.length === 0) throw new ImageDecodeError('empty buffer');
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new ImageDecodeError(err instanceof Error ? err.message : String(err), err);
  }
  const w0 = meta.width ?? 0;
  const h0 = meta.height ?? 0;
  if (w0 <= 0 || h0 <= 0) throw new ImageDecodeError('no image dimensions in header');
  if (w0 * h0 > maxPixels) throw new ImageTooLargeError(w0 * h0, maxPixels);
  const swap = (meta.orientation ?? 1) >= 5;
  const width = swap ? h0 : w0;
  const height = swap ? w0 : h0;
  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await sharp(input, { limitInputPixels: maxPixels, failOn: 'error' })
      .rotate()
      .resize(ANALYSIS_SIDE, ANALYSIS_SIDE, { fit: 'inside', withoutEnlargement: true })
      // Transparent areas count as white, as recognition and the thumbnail show them; dropping the
      // alpha alone left them black and a cut-out photo read "too dark".
      .flatten({ background: '#ffffff' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true }));
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (/pixel limit/i.test(msg)) throw new ImageTooLargeError(w0 * h0, maxPixels);
    throw new ImageDecodeError(msg, err);
  }
  const n = info.width * info.height;
  const ch = info.channels;
  // removeAlpha + sRGB give three channels: sharp's buffer is the RGB image itself. The copy is
  // for anything else (one channel), so this loop on the agent's main thread stays one pass.
  const rgb = ch === 3 ? new Uint8Array(data.buffer, data.byteOffset, n * 3) : new Uint8Array(n * 3);
  const luma = new Float32Array(n);
  for (let i = 0, j = 0; i < n; i++, j += ch) {
    const r = data[j]!;
    const g = ch >= 3 ? data[j + 1]! : r;
    const b = ch >= 3 ? data[j + 2]! : r;
    if (ch !== 3) {
      rgb[i * 3] = r;
      rgb[i * 3 + 1] = g;
      rgb[i * 3 + 2] = b;
    }
    luma[i] = 0.299 * r + 0.587 * g + 0.114 * b;
  }
  const exif = meta.exif && meta.exif.subarray(0, 6).toString('latin1') === 'Exif\0\0' ? meta.exif.subarray(6) : meta.exif;
  return { width, height, format: meta.format ?? 'unknown', rgb, luma, aw: info.width, ah: info.height, ...(exif && exif.length > 0 ? { exif } : {}) };
}
