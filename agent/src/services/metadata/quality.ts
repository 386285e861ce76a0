/**
 * Image quality: size, sharpness (variance of the Laplacian), brightness and
 * contrast, measured on the bounded analysis image from decode.ts.
 * Default thresholds are calibrated on testdata (see README.md).
 */
import { QUALITY_DEFAULTS } from '@tu/firmware-config';
import { decodeForAnalysis, DEFAULT_MAX_PIXELS, type AnalysisImage } from './decode.js';
import type { ImageInput, QualityMetrics, QualityThresholds, QualityWarning } from './types.js';

/** Kept with the config, which refuses a minimum brightness not below the maximum (firmware-config/src/thresholds.ts). */
export const DEFAULT_QUALITY_THRESHOLDS: Readonly<QualityThresholds> = QUALITY_DEFAULTS;

/** Variance of the 4-neighbour Laplacian over interior pixels (luma 0..255). */
export function laplacianVariance(luma: Float32Array, w: number, h: number): number {
  if (w < 3 || h < 3) return 0;
  let sum = 0;
  let sumSq = 0;
  let n = 0;
  for (let y = 1; y < h - 1; y++) {
    const row = y * w;
    for (let x = 1; x < w - 1; x++) {
      const i = row + x;
      const v = (luma[i - 1] as number) + (luma[i + 1] as number) + (luma[i - w] as number) + (luma[i + w] as number) - 4 * (luma[i] as number);
      sum += v;
      sumSq += v * v;
      n++;
    }
  }
  const mean = sum / n;
  return sumSq / n - mean * mean;
}

export function qualityFromImage(img: AnalysisImage): QualityMetrics {
  const { luma } = img;
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < luma.length; i++) {
    const v = luma[i] as number;
    sum += v;
    sumSq += v * v;
  }
  const n = Math.max(1, luma.length);
  const mean = sum / n;
  const sd = Math.sqrt(Math.max(0, sumSq / n - mean * mean));
  const round = (x: number, d: number): number => Number(x.toFixed(d));
  return {
    width: img.width,
    height: img.height,
    megapixels: round((img.width * img.height) / 1e6, 3),
    sharpness: round(laplacianVariance(luma, img.aw, img.ah), 1),
    brightness: round(mean / 255, 4),
    contrast: round(sd / 255, 4),
  };
}

export function qualityWarnings(
  q: QualityMetrics,
  thresholds: Partial<QualityThresholds> = {},
): QualityWarning[] {
  const t = { ...DEFAULT_QUALITY_THRESHOLDS, ...thresholds };
  const w: QualityWarning[] = [];
  if (q.sharpness < t.minSharpness) w.push('blurred');
  if (q.brightness < t.minBrightness) w.push('too_dark');
  if (q.brightness > t.maxBrightness) w.push('too_bright');
  if (q.megapixels < t.minMegapixels || Math.min(q.width, q.height) < t.minSide) w.push('too_small');
  if (q.contrast < t.minContrast) w.push('low_contrast');
  return w;
}

/** Convenience: decode and measure. */
export async function measureQuality(
  input: ImageInput,
  maxPixels: number = DEFAULT_MAX_PIXELS,
): Promise<QualityMetrics> {
  return qualityFromImage(await decodeForAnalysis(input, maxPixels));
}
