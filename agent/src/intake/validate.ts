import sharp from 'sharp';
import { TuError } from '@tu/shared';
import { isImageContentType, sniffImageType, type ImageContentType } from './sniff.js';

export interface IntakeLimits {
  maxUploadBytes: number;
  maxPixels: number;
}

export interface ValidatedImage {
  contentType: ImageContentType;
  width?: number;
  height?: number;
}

/** Sizes as a technician reads them (the messages below are shown in the technician UI). */
const mb = (bytes: number): string => `${(bytes / 1_000_000).toFixed(1)} MB`;
const mp = (pixels: number): string => `${(pixels / 1_000_000).toFixed(1)} megapixels`;

/** Media type without parameters, lower-case (`image/JPEG; x=1` → `image/jpeg`). */
export const baseMediaType = (ct: string | undefined): string => (ct ?? '').split(';')[0]!.trim().toLowerCase();

/**
 * Checks an upload before anything is stored or published: declared type allowed (415),
 * not empty (400), within the byte limit (413), the bytes really are JPEG/PNG/WebP (415),
 * and the header's width × height within the pixel limit (413) — read from the header
 * with sharp metadata, never decoded. A file whose header passes but whose data is
 * corrupt is accepted; the analysis reports the decode failure.
 */
/** How many times a progressive JPEG's pixels count against limits.maxPixels (see validateImage). */
export const PROGRESSIVE_WEIGHT = 2;

export async function validateImage(bytes: Buffer, declaredType: string | undefined, limits: IntakeLimits): Promise<ValidatedImage> {
  const declared = baseMediaType(declaredType);
  if (declared && declared !== 'application/octet-stream' && !isImageContentType(declared)) {
    throw new TuError('UNSUPPORTED_MEDIA_TYPE');
  }
  if (bytes.length === 0) throw new TuError('IMAGE_EMPTY');
  if (bytes.length > limits.maxUploadBytes) {
    throw new TuError('UPLOAD_TOO_LARGE', `The photo is too large (${mb(bytes.length)}; this gateway accepts up to ${mb(limits.maxUploadBytes)}). Take it at a lower resolution or choose a smaller file.`);
  }
  const sniffed = sniffImageType(bytes);
  if (!sniffed) throw new TuError('NOT_AN_IMAGE');
  let width: number | undefined;
  let height: number | undefined;
  let progressive = false;
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    width = meta.autoOrient?.width ?? meta.width;
    height = meta.autoOrient?.height ?? meta.height;
    progressive = sniffed === 'image/jpeg' && meta.isProgressive === true;
  } catch {
    // Header unreadable although the magic number matched: accept; decoding will fail with a reason.
  }
  if (width && height && width * height > limits.maxPixels) {
    throw new TuError(
      'IMAGE_TOO_MANY_PIXELS',
      `The photo has too many pixels (${width} × ${height} = ${mp(width * height)}; this gateway accepts up to ${mp(limits.maxPixels)}). Take it at a lower resolution and try again.`,
    );
  }
  // A progressive JPEG is decoded from all its scans at once: 157 MB for 49 MP against 10 MB for
  // the same photo baseline, and each photo is decoded by several steps side by side, on a gateway
  // with 1 GB. So it counts PROGRESSIVE_WEIGHT times against the pixel limit: twice keeps the
  // progressive photos people send (22 of the 97 real test photos, up to 18 MP) and refuses the
  // 49 MP ones that would take 600 MB.
  if (progressive && width && height && width * height * PROGRESSIVE_WEIGHT > limits.maxPixels) {
    throw new TuError(
      'IMAGE_TOO_MANY_PIXELS',
      `The photo is a progressive JPEG of ${mp(width * height)}; this gateway decodes those only up to ${mp(limits.maxPixels / PROGRESSIVE_WEIGHT)} (they need ${PROGRESSIVE_WEIGHT} times the memory). Send the camera's original photo, or save it as a standard (baseline) JPEG.`,
    );
  }
  return { contentType: sniffed, ...(width ? { width } : {}), ...(height ? { height } : {}) };
}
