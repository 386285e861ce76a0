/**
 * Calibrates the quality thresholds: measures real photos and degraded copies
 * (blur scaled to the analysis size, darkened, brightened, flattened).
 * Run: npx tsx agent/src/services/metadata/scripts/calibrate-quality.ts
 */
import sharp from 'sharp';
import { decodeForAnalysis, ANALYSIS_SIDE } from '../decode.js';
import { qualityFromImage, qualityWarnings } from '../quality.js';
import { listPhotos } from './testdata.js';
import type { QualityMetrics } from '../types.js';

const photos = listPhotos();
const rows: Record<string, QualityMetrics[]> = { real: [], blur1: [], blur2: [], blur3: [], dark: [], bright: [], flat: [] };
const times: number[] = [];
const q = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))] ?? NaN; };

for (const p of photos) {
  const t0 = performance.now();
  const img = await decodeForAnalysis(p.path);
  times.push(performance.now() - t0);
  const m = qualityFromImage(img);
  rows.real!.push(m);
  // degrade on an 1024-px working copy so blur sigma is relative to the analysis scale
  const base = await sharp(p.path).rotate().resize(1024, 1024, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 92 }).toBuffer();
  const bmeta = await sharp(base).metadata();
  const scale = Math.max(bmeta.width ?? 1, bmeta.height ?? 1) / ANALYSIS_SIDE;
  for (const [k, sigma] of [['blur1', 1], ['blur2', 2], ['blur3', 3]] as const) {
    const buf = await sharp(base).blur(Math.max(0.3, sigma * scale)).jpeg({ quality: 90 }).toBuffer();
    rows[k]!.push(qualityFromImage(await decodeForAnalysis(buf)));
  }
  rows.dark!.push(qualityFromImage(await decodeForAnalysis(await sharp(base).linear(0.25, 0).jpeg().toBuffer())));
  rows.bright!.push(qualityFromImage(await decodeForAnalysis(await sharp(base).linear(0.3, 185).jpeg().toBuffer())));
  rows.flat!.push(qualityFromImage(await decodeForAnalysis(await sharp(base).linear(0.15, 100).jpeg().toBuffer())));
  if (process.argv.includes('--verbose')) console.log(p.folder, p.file, m.width, m.height, m.sharpness, m.brightness, m.contrast);
}
console.log(`photos: ${photos.length}`);
for (const [k, ms] of Object.entries(rows)) {
  const f = (key: keyof QualityMetrics): string => [0, 0.05, 0.1, 0.5, 0.9, 0.95, 1].map((pp) => q(ms.map((m) => m[key]), pp).toFixed(3)).join(' ');
  console.log(`${k.padEnd(7)} sharp[min p5 p10 med p90 p95 max] ${f('sharpness')}\n        bright ${f('brightness')}\n        contr  ${f('contrast')}\n        mp ${f('megapixels')}`);
}
for (const [k, ms] of Object.entries(rows)) {
  const counts: Record<string, number> = {};
  for (const m of ms) for (const w of qualityWarnings(m)) counts[w] = (counts[w] ?? 0) + 1;
  console.log(`${k.padEnd(7)} flagged with defaults (of ${ms.length}): ${JSON.stringify(counts)}`);
}
console.log(`decode+resize ms: median ${q(times, 0.5).toFixed(1)} p90 ${q(times, 0.9).toFixed(1)} max ${q(times, 1).toFixed(1)}`);
