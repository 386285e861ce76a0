/**
 * Measures Hamming distances: each real photo vs generated re-uploads (re-encode,
 * resize, crop) and between all pairs of different photos (incl. same machine).
 * Run: npx tsx agent/src/services/comparison/scripts/calibrate-hash.ts
 */
import sharp from 'sharp';
import { dhash, hammingDistance, phash } from '../phash.js';
import { listPhotos } from '../../metadata/scripts/testdata.js';

export async function reuploads(path: string): Promise<Record<string, Buffer>> {
  const m = await sharp(path).rotate().metadata();
  const w = m.autoOrient?.width ?? m.width ?? 0;
  const h = m.autoOrient?.height ?? m.height ?? 0;
  const cx = Math.round(w * 0.04), cy = Math.round(h * 0.04);
  return {
    reencode_q50: await sharp(path).rotate().jpeg({ quality: 50 }).toBuffer(),
    resize_50pct: await sharp(path).rotate().resize(Math.max(16, Math.round(w / 2))).jpeg({ quality: 85 }).toBuffer(),
    webp_q70: await sharp(path).rotate().webp({ quality: 70 }).toBuffer(),
    crop_4pct: await sharp(path).rotate().extract({ left: cx, top: cy, width: w - 2 * cx, height: h - 2 * cy }).jpeg({ quality: 85 }).toBuffer(),
    brighter: await sharp(path).rotate().linear(1.1, 10).jpeg({ quality: 85 }).toBuffer(),
  };
}

const photos = listPhotos();
const kinds = { phash, dhash } as const;
const q = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))] ?? NaN; };
for (const [name, fn] of Object.entries(kinds)) {
  const t0 = performance.now();
  const base = await Promise.all(photos.map((p) => fn(p.path)));
  const ms = (performance.now() - t0) / photos.length;
  const dup: Record<string, number[]> = {};
  for (const [i, p] of photos.entries()) {
    for (const [k, buf] of Object.entries(await reuploads(p.path))) (dup[k] ??= []).push(hammingDistance(base[i] as string, await fn(buf)));
  }
  const diff: number[] = [];
  const closest: string[] = [];
  for (let i = 0; i < photos.length; i++) for (let j = i + 1; j < photos.length; j++) {
    const d = hammingDistance(base[i] as string, base[j] as string);
    diff.push(d);
    if (d <= 16) closest.push(`${d} ${photos[i]?.file} ~ ${photos[j]?.file}`);
  }
  const allDup = Object.values(dup).flat();
  console.log(`\n${name}: ${ms.toFixed(1)} ms/photo (incl. decode)`);
  for (const [k, ds] of Object.entries(dup)) console.log(`  dup ${k.padEnd(13)} max ${Math.max(...ds)} p95 ${q(ds, 0.95)} median ${q(ds, 0.5)}`);
  console.log(`  dup all        max ${Math.max(...allDup)}`);
  console.log(`  different (${diff.length} pairs): min ${Math.min(...diff)} p1 ${q(diff, 0.01)} p5 ${q(diff, 0.05)} median ${q(diff, 0.5)}`);
  for (const t of [6, 8, 10, 12, 14]) console.log(`  threshold <=${t}: dup recall ${(allDup.filter((d) => d <= t).length / allDup.length * 100).toFixed(1)}%  false dup pairs ${diff.filter((d) => d <= t).length}`);
  console.log('  closest different pairs:\n   ' + closest.sort((a, b) => parseInt(a) - parseInt(b)).slice(0, 12).join('\n   '));
}
