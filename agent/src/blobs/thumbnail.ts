import sharp from 'sharp';

export const THUMBNAIL_SIDE = 160;
/** Base64 budget of a thumbnail (the image ref schema allows 24k characters). */
export const THUMBNAIL_MAX_BASE64 = 12_000;

/**
 * A small JPEG thumbnail for dashboards: EXIF-oriented, longest side 160 px, quality lowered
 * until its base64 fits the budget. Undefined when the image cannot be decoded (the analysis
 * will report why). The JPEG bytes: intake stores them beside the photo (blobs/derived.ts).
 */
export async function makeThumbnail(bytes: Buffer, maxPixels: number): Promise<Buffer | undefined> {
  for (const quality of [70, 50, 30]) {
    try {
      const out = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
        .rotate()
        .resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, { fit: 'inside', withoutEnlargement: true })
        .flatten({ background: '#ffffff' })
        .jpeg({ quality, mozjpeg: false })
        .toBuffer();
      if (Math.ceil(out.byteLength / 3) * 4 <= THUMBNAIL_MAX_BASE64) return out;
    } catch {
      return undefined;
    }
  }
  return undefined;
}
