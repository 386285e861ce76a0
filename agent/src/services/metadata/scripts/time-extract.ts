/** Timings of extractMetadata over testdata. Run: npx tsx agent/src/services/metadata/scripts/time-extract.ts */
import { extractMetadata } from '../extract.js';
import { decodeForAnalysis } from '../decode.js';
import { laplacianVariance } from '../quality.js';
import { listPhotos } from './testdata.js';

const photos = listPhotos();
const q = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(p * (s.length - 1))] ?? NaN; };
for (const p of photos.slice(0, 5)) await extractMetadata(p.path, { uploadedAt: new Date().toISOString() }); // warm-up
const exif: number[] = [], qual: number[] = [], lap: number[] = [], total: number[] = [];
const slow: string[] = [];
for (const p of photos) {
  const t0 = performance.now();
  const r = await extractMetadata(p.path, { uploadedAt: new Date().toISOString() });
  const ms = performance.now() - t0;
  total.push(ms); exif.push(r.timings.exifMs); qual.push(r.timings.qualityMs);
  if (ms > 50) slow.push(`${p.folder}/${p.file} ${r.quality.width}x${r.quality.height} ${ms.toFixed(0)} ms`);
  const img = await decodeForAnalysis(p.path);
  const t1 = performance.now();
  laplacianVariance(img.luma, img.aw, img.ah);
  lap.push(performance.now() - t1);
}
const f = (xs: number[]): string => `median ${q(xs, 0.5).toFixed(1)} p90 ${q(xs, 0.9).toFixed(1)} max ${q(xs, 1).toFixed(1)} ms`;
console.log(`photos ${photos.length}\nexif    ${f(exif)}\nquality ${f(qual)}\ntotal   ${f(total)}\nlaplacian (JS, 512px) ${f(lap)}\nslow:\n ${slow.join('\n ')}`);
