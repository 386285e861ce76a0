/**
 * extractMetadata: EXIF + quality + category + machine-record fields for one image.
 * Decoding failures throw MetadataError (IMAGE_DECODE_FAILED / IMAGE_TOO_LARGE);
 * EXIF problems never throw (they become exif.notes).
 */
import { categorize, colourCues, type CategoryOptions } from './category.js';
import { decodeForAnalysis, DEFAULT_MAX_PIXELS } from './decode.js';
import { readExif } from './exif.js';
import { qualityFromImage, qualityWarnings } from './quality.js';
import { judgeCaptureTime, sortIntoRecord, type CaptureTimeCheck } from './sort.js';
import type {
  ExifInfo, ImageInput, MachineRecordFields, PhotoCategory, QualityMetrics, QualityThresholds,
  QualityWarning, RecognitionHint, RegisteredMachine,
} from './types.js';

export interface ExtractOptions {
  thresholds?: Partial<QualityThresholds>;
  /** Pixel limit (width x height of the encoded image); default 50e6. */
  maxPixels?: number;
  /** ISO time the image was received; lastSeenAt falls back to it. */
  uploadedAt: string;
  recognition?: RecognitionHint;
  registered?: RegisteredMachine;
  assumedUtcOffset?: string;
  category?: Partial<CategoryOptions>;
}

export interface MetadataResult {
  exif: ExifInfo;
  quality: QualityMetrics;
  warnings: QualityWarning[];
  category: PhotoCategory;
  /** What the category rests on: the photo alone (no recognition result given) or with the recognition result. */
  categoryBasis: 'image' | 'image-and-recognition';
  categoryReason: string;
  record: MachineRecordFields;
  /** The capture time judged against the upload time (sort.ts); absent without a capture time. */
  captureCheck?: CaptureTimeCheck;
  timings: { exifMs: number; qualityMs: number };
}

export async function extractMetadata(input: ImageInput, options: ExtractOptions): Promise<MetadataResult> {
  const t0 = performance.now();
  const qualityPromise = decodeForAnalysis(input, options.maxPixels ?? DEFAULT_MAX_PIXELS).then((img) => ({
    img,
    ms: performance.now() - t0,
  }));
  const exifPromise = readExif(input).then((exif) => ({ exif, ms: performance.now() - t0 }));
  // decode errors propagate; readExif never rejects
  const [{ img, ms: decodeMs }, first] = await Promise.all([qualityPromise, exifPromise]);
  let { exif, ms: exifMs } = first;
  // The EXIF reader finds nothing in a WebP, nor (reading a file in chunks) behind more than about
  // 500 bytes of other headers; sharp found the block while decoding: read that instead.
  if (img.exif && !exif.captureTime && !exif.gps && !exif.camera && exif.orientation === undefined) {
    const again = await readExif(img.exif);
    if (again.captureTime || again.gps || again.camera || again.orientation !== undefined) exif = again;
    exifMs = performance.now() - t0;
  }
  const tq = performance.now();
  const quality = qualityFromImage(img);
  const warnings = qualityWarnings(quality, options.thresholds);
  const decision = categorize(colourCues(img), options.recognition, options.category);
  const qualityMs = decodeMs + (performance.now() - tq);
  const captureCheck = judgeCaptureTime(exif, options.uploadedAt, options.assumedUtcOffset);
  const record = sortIntoRecord({
    exif,
    ...(captureCheck ? { captureCheck } : {}),
    warnings,
    category: decision.category,
    uploadedAt: options.uploadedAt,
    ...(options.recognition ? { recognition: options.recognition } : {}),
    ...(options.registered ? { registered: options.registered } : {}),
    ...(options.assumedUtcOffset ? { assumedUtcOffset: options.assumedUtcOffset } : {}),
  });
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  return {
    exif,
    quality,
    warnings,
    category: decision.category,
    categoryBasis: options.recognition ? 'image-and-recognition' : 'image',
    categoryReason: decision.reason,
    record,
    ...(captureCheck ? { captureCheck } : {}),
    timings: { exifMs: r2(exifMs), qualityMs: r2(qualityMs) },
  };
}
