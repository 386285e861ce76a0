import sharp from 'sharp';

export const THUMBNAIL_SIDE = 160;
/** Base64 budget of a thumbnail (the image ref schema allows 24k characters). */
export const THUMBNAIL_MAX_BASE64 = 12_000;

/**
 * A small JPEG thumbnail (base64) for dashboards: EXIF-oriented, longest side 160 px,
 * quality lowered until it fits the budget. Undefined when the image cannot be decoded
 * (the analysis will report why).
 */
export async function makeThumbnail(bytes: Buffer, maxPixels: number): Promise<string | undefined> {
  for (const quality of [70, 50, 30]) {
    try {
      const out = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
        .rotate()
        .resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, { fit: 'inside', withoutEnlargement: true })
        .flatten({ background: '#ffffff' })
        .jpeg({ quality, mozjpeg: false })
        .toBuffer();
      const b64 = out.toString('base64');
      if (b64.length <= THUMBNAIL_MAX_BASE64) return b64;
    } catch {
      return undefined;
    }
  }
  return undefined;
}
