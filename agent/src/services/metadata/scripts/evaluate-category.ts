/**
 * Measures the category heuristic on testdata. Expected: nameplate_text/ → nameplate,
 * negative/ and exif_gps/ → other, machine folders → overview.
 * ImageNet top-5 come from imagenet-top5.json (MobileNet v1 0.25, recorded once;
 * machineType is 'unknown' because no machine-type head existed when recorded).
 * Run: npx tsx agent/src/services/metadata/scripts/evaluate-category.ts
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeForAnalysis } from '../decode.js';
import { categorize, colourCues } from '../category.js';
import type { PhotoCategory, RecognitionHint } from '../types.js';
import { listPhotos } from './testdata.js';

type Top5 = Record<string, [string, number, number][]>;
const top5 = JSON.parse(readFileSync(fileURLToPath(new URL('./imagenet-top5.json', import.meta.url)), 'utf8')) as Top5;

export function expectedCategory(folder: string): PhotoCategory {
  if (folder === 'nameplate_text') return 'nameplate';
  if (folder === 'negative' || folder === 'exif_gps') return 'other';
  return 'overview';
}

const settings = ['pixels-only', 'with-imagenet'] as const;
for (const setting of settings) {
  const confusion: Record<string, Record<string, number>> = {};
  let ok = 0;
  let total = 0;
  const misses: string[] = [];
  for (const p of listPhotos()) {
    const key = `${p.folder}/${p.file}`;
    const t = top5[key];
    const rec: RecognitionHint | undefined =
      setting === 'with-imagenet' && t
        ? { machineType: 'unknown', confidence: 0, imagenetTopK: t.map(([label, index, score]) => ({ label, index, score })) }
        : undefined;
    const d = categorize(colourCues(await decodeForAnalysis(p.path)), rec);
    const exp = expectedCategory(p.folder);
    confusion[exp] ??= {};
    const row = confusion[exp] as Record<string, number>;
    row[d.category] = (row[d.category] ?? 0) + 1;
    total++;
    if (d.category === exp) ok++;
    else misses.push(`${key} → ${d.category} (${d.reason})`);
  }
  console.log(`\n${setting}: accuracy ${ok}/${total} = ${((100 * ok) / total).toFixed(1)}%`);
  console.log(JSON.stringify(confusion));
  if (process.argv.includes('--verbose')) console.log(misses.join('\n'));
}
