/** Lists the real test photos (never copied into the repo). Used by calibration scripts. */
import { readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../../../..');

export function testdataDir(): string {
  return process.env.TU_TESTDATA_DIR ?? path.resolve(repoRoot, '../shared/testdata/images');
}

export interface Photo { folder: string; file: string; path: string }

export function listPhotos(dir = testdataDir()): Photo[] {
  if (!existsSync(dir)) return [];
  const out: Photo[] = [];
  for (const folder of readdirSync(dir, { withFileTypes: true })) {
    if (!folder.isDirectory() || folder.name === 'SOURCES') continue;
    for (const file of readdirSync(path.join(dir, folder.name)).sort()) {
      if (/\.(jpe?g|png|webp)$/i.test(file)) out.push({ folder: folder.name, file, path: path.join(dir, folder.name, file) });
    }
  }
  return out.sort((a, b) => (a.folder + a.file).localeCompare(b.folder + b.file));
}
