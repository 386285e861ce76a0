/**
 * The real photos the benches upload (`TU_TESTDATA_DIR`, default ../shared/testdata/images): every
 * JPEG, PNG and WebP of the category folders, folders and names in sorted order.
 */
import fs from 'node:fs';
import path from 'node:path';

export const IMAGES_DIR = process.env['TU_TESTDATA_DIR'] ?? path.resolve(import.meta.dirname, '../../shared/testdata/images');
const TYPES: Record<string, string> = { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp' };

export function listPhotos(): { file: string; type: string }[] {
  const out: { file: string; type: string }[] = [];
  for (const d of fs.readdirSync(IMAGES_DIR, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!d.isDirectory() || d.name === 'SOURCES') continue;
    for (const name of fs.readdirSync(path.join(IMAGES_DIR, d.name)).sort()) {
      const type = TYPES[path.extname(name).toLowerCase()];
      if (type) out.push({ file: path.join(IMAGES_DIR, d.name, name), type });
    }
  }
  return out;
}
