/**
 * Image → model input. sharp pipeline: header check against the pixel limit,
 * EXIF auto-orientation, alpha flattened onto white, forced sRGB, resize to
 * 224x224 (JPEG/WebP shrink-on-load kicks in automatically because the resize
 * is part of the same pipeline), raw RGB bytes → Float32 in the layout (NHWC / NCHW)
 * and normalisation the model manifest asks for (default NHWC in [0,1]).
 */
import { stat } from 'node:fs/promises';
import sharp, { type Metadata, type OutputInfo, type SharpOptions } from 'sharp';
import { ImageError } from './errors.js';
import type { InputSpec } from './manifest.js';

// Memory: libvips' operation cache keeps decoded pipelines alive and every extra libvips
// thread gets its own glibc malloc arena; on a 2-core gateway neither helps throughput
// (measured in bench/pipeline.bench.ts). Process-wide settings, idempotent.
sharp.cache(false);
sharp.concurrency(1);

/** cover = centre crop keeping aspect; fill = stretch the whole image; contain = letterbox. */
export type FitMode = 'cover' | 'fill' | 'contain';
export const FIT_MODES: readonly FitMode[] = ['cover', 'fill', 'contain'];
export const DEFAULT_MAX_PIXELS = 50e6;
/** Input side of every model we ship (a manifest may say otherwise). */
export const INPUT_SIZE = 224;

export interface PreprocessOptions {
  fit?: FitMode;
  /** Refuse images whose header declares more pixels than this (decompression-bomb guard). */
  maxPixels?: number;
  size?: number;
  /** Layout and normalisation of the model (manifest.ts inputSpec); overrides `size`. */
  input?: InputSpec;
}

/** NHWC, v/255: what the TF.js models of MODELS.md expect, and the default. */
export const UNIT_RANGE_NHWC: Omit<InputSpec, 'size'> = { layout: 'NHWC', mean: [0, 0, 0], scale: [255, 255, 255] };

export interface PreprocessedImage {
  /** RGB, length size*size*3, in the requested layout/normalisation (default HWC, [0,1]). */
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

/**
 * Checks the input exists and reads only the image header: an image over `maxPixels`
 * (a decompression bomb) is refused before any pixel is decoded.
 */
async function readHeader(input: ImageInput, maxPixels: number): Promise<{ sharpOpts: SharpOptions; meta: Metadata; w0: number; h0: number }> {
  if (typeof input === 'string') {
    try {
      const s = await stat(input);
      if (!s.isFile()) throw new Error('not a regular file');
    } catch (err) {
      throw new ImageError('IMAGE_NOT_FOUND', `image file ${input} not found or unreadable: ${(err as Error).message}`, { cause: err });
    }
  }
  const sharpOpts: SharpOptions = { limitInputPixels: Math.max(1, Math.floor(maxPixels)), failOn: 'error' };
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
      `image ${describe(input)} declares ${w0}x${h0} = ${((w0 * h0) / 1e6).toFixed(1)} MP, above the limit of ${(maxPixels / 1e6).toFixed(1)} MP; raise maxPixels if such images are legitimate`,
    );
  }
  return { sharpOpts, meta, w0, h0 };
}

/**
 * 8-bit RGB (or grey / RGBA) pixels → model input: (v - mean[c]) / scale[c], written
 * channel-planar (NCHW) or interleaved (NHWC). The one place pixel values become model input.
 */
export function toModelInput(bytes: Uint8Array, channels: number, size: number, spec: Omit<InputSpec, 'size'>): Float32Array {
  const n = size * size;
  const out = new Float32Array(n * 3);
  const planar = spec.layout === 'NCHW';
  for (let c = 0; c < 3; c++) {
    const mean = spec.mean[c] ?? 0;
    const scale = spec.scale[c] ?? 1;
    const src = channels >= 3 ? c : 0;
    for (let i = 0; i < n; i++) {
      const v = ((bytes[i * channels + src] ?? 0) - mean) / scale;
      out[planar ? c * n + i : i * 3 + c] = v;
    }
  }
  return out;
}

/** Mirror images left-right (flip test-time augmentation), in either layout; n images of size². */
export function flipHorizontal(data: Float32Array, size: number, layout: InputSpec['layout']): Float32Array {
  const out = new Float32Array(data.length);
  const planes = data.length / (size * size);
  if (layout === 'NCHW') {
    for (let p = 0; p < planes; p++)
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) out[(p * size + y) * size + (size - 1 - x)] = data[(p * size + y) * size + x] ?? 0;
    return out;
  }
  const images = planes / 3;
  for (let k = 0; k < images; k++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        for (let c = 0; c < 3; c++) out[((k * size + y) * size + (size - 1 - x)) * 3 + c] = data[((k * size + y) * size + x) * 3 + c] ?? 0;
  return out;
}

export async function preprocessImage(input: ImageInput, opts: PreprocessOptions = {}): Promise<PreprocessedImage> {
  const t0 = performance.now();
  const size = opts.input?.size ?? opts.size ?? INPUT_SIZE;
  const fit = opts.fit ?? 'cover';
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const { sharpOpts, meta, w0, h0 } = await readHeader(input, maxPixels);
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
  const out = toModelInput(bytes, info.channels, size, opts.input ?? { ...UNIT_RANGE_NHWC, size });
  return { data: out, size, width, height, format: meta.format ?? 'unknown', decodeMs: performance.now() - t0 };
}

/**
 * Multi-view preprocessing (test-time / train-time augmentation): the image is
 * decoded ONCE (shrink-on-load) to a small base whose short side is `baseSize`,
 * then every view is cut from that base and resized to `size` in JS (bilinear).
 *
 *  cover  centred square of the full short side    fill  the whole image stretched
 *  c80    centred square, 80% of the short side     tl/tr/bl/br  80% squares in the corners
 *  suffix `-flip` mirrors the view horizontally.
 */
export const VIEW_NAMES = ['cover', 'fill', 'c80', 'tl', 'tr', 'bl', 'br'] as const;
export type BaseView = (typeof VIEW_NAMES)[number];
export type ViewName = BaseView | `${BaseView}-flip`;

export function isViewName(v: string): v is ViewName {
  return (VIEW_NAMES as readonly string[]).includes(v.replace(/-flip$/, ''));
}

export interface MultiViewImage {
  /** views.length × size × size × 3, HWC RGB in [0,1], view after view. */
  data: Float32Array;
  views: ViewName[];
  size: number;
  width: number;
  height: number;
  format: string;
  decodeMs: number;
}

function viewBox(view: BaseView, w: number, h: number): { x: number; y: number; cw: number; ch: number } {
  const s = Math.min(w, h);
  if (view === 'fill') return { x: 0, y: 0, cw: w, ch: h };
  if (view === 'cover') return { x: (w - s) / 2, y: (h - s) / 2, cw: s, ch: s };
  const c = 0.8 * s;
  const cx = (w - s) / 2;
  const cy = (h - s) / 2;
  switch (view) {
    case 'c80':
      return { x: (w - c) / 2, y: (h - c) / 2, cw: c, ch: c };
    case 'tl':
      return { x: cx, y: cy, cw: c, ch: c };
    case 'tr':
      return { x: cx + s - c, y: cy, cw: c, ch: c };
    case 'bl':
      return { x: cx, y: cy + s - c, cw: c, ch: c };
    default:
      return { x: cx + s - c, y: cy + s - c, cw: c, ch: c };
  }
}

/** Bilinear resample of a crop of an RGB byte image into out[offset..] as floats in [0,1]. */
function resampleInto(
  src: Uint8Array,
  w: number,
  h: number,
  box: { x: number; y: number; cw: number; ch: number },
  size: number,
  flip: boolean,
  out: Float32Array,
  offset: number,
): void {
  const sx = box.cw / size;
  const sy = box.ch / size;
  for (let oy = 0; oy < size; oy++) {
    const fy = Math.min(h - 1, Math.max(0, box.y + (oy + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(h - 1, y0 + 1);
    const wy = fy - y0;
    for (let ox = 0; ox < size; ox++) {
      const fx = Math.min(w - 1, Math.max(0, box.x + (ox + 0.5) * sx - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(w - 1, x0 + 1);
      const wx = fx - x0;
      const o = offset + (oy * size + (flip ? size - 1 - ox : ox)) * 3;
      const a = (y0 * w + x0) * 3;
      const b = (y0 * w + x1) * 3;
      const c = (y1 * w + x0) * 3;
      const d = (y1 * w + x1) * 3;
      for (let k = 0; k < 3; k++) {
        const top = (src[a + k] ?? 0) * (1 - wx) + (src[b + k] ?? 0) * wx;
        const bot = (src[c + k] ?? 0) * (1 - wx) + (src[d + k] ?? 0) * wx;
        out[o + k] = (top * (1 - wy) + bot * wy) / 255;
      }
    }
  }
}

export async function preprocessViews(
  input: ImageInput,
  views: readonly ViewName[],
  opts: { maxPixels?: number; size?: number; baseSize?: number } = {},
): Promise<MultiViewImage> {
  const t0 = performance.now();
  const size = opts.size ?? INPUT_SIZE;
  const baseSize = opts.baseSize ?? 256;
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const { sharpOpts, meta, w0, h0 } = await readHeader(input, maxPixels);
  const swap = (meta.orientation ?? 1) >= 5;
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await sharp(input, sharpOpts)
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      // short side = baseSize, aspect kept (shrink-on-load applies)
      .resize(baseSize, baseSize, { fit: 'outside' })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw decodeError(input, err);
  }
  let { data: bytes } = raw;
  const { width: w, height: h, channels } = raw.info;
  if (channels !== 3) {
    const rgb = Buffer.alloc(w * h * 3);
    for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = bytes[i * channels + (channels === 1 ? 0 : c)] ?? 0;
    bytes = rgb;
  }
  const per = size * size * 3;
  const data = new Float32Array(per * views.length);
  views.forEach((v, i) => {
    const flip = v.endsWith('-flip');
    const base = v.replace(/-flip$/, '') as BaseView;
    resampleInto(bytes, w, h, viewBox(base, w, h), size, flip, data, i * per);
  });
  return { data, views: [...views], size, width: swap ? h0 : w0, height: swap ? w0 : h0, format: meta.format ?? 'unknown', decodeMs: performance.now() - t0 };
}
