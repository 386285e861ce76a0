import sharp from 'sharp';
import { HttpError } from './errors.js';
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

/** Media type without parameters, lower-case (`image/JPEG; x=1` → `image/jpeg`). */
export const baseMediaType = (ct: string | undefined): string => (ct ?? '').split(';')[0]!.trim().toLowerCase();

/**
 * Checks an upload before anything is stored or published: declared type allowed (415),
 * not empty (400), within the byte limit (413), the bytes really are JPEG/PNG/WebP (415),
 * and the header's width × height within the pixel limit (413) — read from the header
 * with sharp metadata, never decoded. A file whose header passes but whose data is
 * corrupt is accepted; the analysis reports the decode failure.
 */
export async function validateImage(bytes: Buffer, declaredType: string | undefined, limits: IntakeLimits): Promise<ValidatedImage> {
  const declared = baseMediaType(declaredType);
  if (declared && declared !== 'application/octet-stream' && !isImageContentType(declared)) {
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `Content-Type ${declared.slice(0, 100)} is not accepted; send image/jpeg, image/png or image/webp.`);
  }
  if (bytes.length === 0) throw new HttpError(400, 'IMAGE_EMPTY');
  if (bytes.length > limits.maxUploadBytes) {
    throw new HttpError(413, 'UPLOAD_TOO_LARGE', `The upload has ${bytes.length} bytes, above limits.maxUploadBytes = ${limits.maxUploadBytes}.`);
  }
  const sniffed = sniffImageType(bytes);
  if (!sniffed) throw new HttpError(415, 'NOT_AN_IMAGE');
  let width: number | undefined;
  let height: number | undefined;
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    width = meta.autoOrient?.width ?? meta.width;
    height = meta.autoOrient?.height ?? meta.height;
  } catch {
    // Header unreadable although the magic number matched: accept; decoding will fail with a reason.
  }
  if (width && height && width * height > limits.maxPixels) {
    throw new HttpError(
      413,
      'IMAGE_TOO_MANY_PIXELS',
      `The image declares ${width}x${height} = ${width * height} pixels, above limits.maxPixels = ${limits.maxPixels}; downscale it before upload.`,
    );
  }
  return { contentType: sniffed, ...(width ? { width } : {}), ...(height ? { height } : {}) };
}
