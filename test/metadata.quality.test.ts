import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { decodeForAnalysis } from '@tu/agent/internal/services/metadata/decode';
import { DEFAULT_QUALITY_THRESHOLDS, measureQuality, qualityFromImage, qualityWarnings } from '@tu/agent/internal/services/metadata/quality';
import type { QualityWarning } from '@tu/agent/internal/services/metadata/types';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const photos = process.env.TU_TESTDATA_DIR ?? path.resolve(repoRoot, '../shared/testdata/images');
const machineDirs = ['excavator', 'wheel_loader', 'dump_truck', 'crane', 'telehandler', 'tractor', 'bulldozer'];
const machinePhotos = machineDirs.flatMap((d) =>
  readdirSync(path.join(photos, d)).filter((f) => /\.(jpe?g|webp)$/i.test(f)).map((f) => path.join(photos, d, f)));

async function warningsOf(input: string | Buffer): Promise<QualityWarning[]> {
  return qualityWarnings(await measureQuality(input));
}

/** Working copy at 1024 px so blur sigma is relative to the 512-px analysis scale. */
async function base(p: string): Promise<Buffer> {
  return sharp(p).rotate().resize(1024, 1024, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 92 }).toBuffer();
}

test('real machine photos mostly pass all checks', async () => {
  let clean = 0;
  for (const p of machinePhotos) if ((await warningsOf(p)).length === 0) clean++;
  assert.ok(clean / machinePhotos.length >= 0.9, `${clean}/${machinePhotos.length} clean`);
});

test('blurred, dark, washed-out and flat copies are flagged', async () => {
  const sample = machinePhotos.filter((_, i) => i % 4 === 0);
  let blur = 0, dark = 0, bright = 0, flat = 0;
  for (const p of sample) {
    const b = await base(p);
    const scale = Math.max(...(await sharp(b).metadata().then((m) => [m.width ?? 1, m.height ?? 1]))) / 512;
    if ((await warningsOf(await sharp(b).blur(2 * scale).jpeg().toBuffer())).includes('blurred')) blur++;
    if ((await warningsOf(await sharp(b).linear(0.25, 0).jpeg().toBuffer())).includes('too_dark')) dark++;
    if ((await warningsOf(await sharp(b).linear(0.3, 185).jpeg().toBuffer())).includes('too_bright')) bright++;
    if ((await warningsOf(await sharp(b).linear(0.15, 100).jpeg().toBuffer())).includes('low_contrast')) flat++;
  }
  const n = sample.length;
  assert.is(blur, n, 'blur sigma 2 (analysis scale) always flagged');
  assert.ok(dark >= 0.8 * n, `dark ${dark}/${n}`);
  assert.ok(bright >= 0.7 * n, `bright ${bright}/${n}`);
  assert.is(flat, n);
});

test('synthetic extremes: uniform grey, black, white, tiny', async () => {
  const grey = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#808080' } }).jpeg().toBuffer();
  const q = await measureQuality(grey);
  assert.is(q.width, 800);
  assert.is(q.megapixels, 0.48);
  assert.ok(q.sharpness < 1 && q.contrast < 0.01);
  assert.equal(qualityWarnings(q), ['blurred', 'low_contrast']);
  const black = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#000' } }).png().toBuffer();
  assert.ok((await warningsOf(black)).includes('too_dark'));
  const white = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#fff' } }).png().toBuffer();
  assert.ok((await warningsOf(white)).includes('too_bright'));
  const tiny = await sharp(path.join(photos, 'excavator/surya_img05.jpeg')).resize(200).toBuffer();
  assert.ok((await warningsOf(tiny)).includes('too_small'));
});

test('thresholds passed in override the defaults', async () => {
  const q = await measureQuality(path.join(photos, 'excavator/surya_img05.jpeg'));
  assert.equal(qualityWarnings(q), []);
  assert.ok(qualityWarnings(q, { minSharpness: q.sharpness + 1 }).includes('blurred'));
  assert.ok(qualityWarnings(q, { minMegapixels: 100 }).includes('too_small'));
  assert.is(DEFAULT_QUALITY_THRESHOLDS.minSharpness, 150);
});

test('EXIF orientation: displayed size is reported, pixels are rotated', async () => {
  const src = await sharp({ create: { width: 600, height: 400, channels: 3, background: '#446' } })
    .composite([{ input: { create: { width: 100, height: 100, channels: 3, background: '#fff' } }, left: 0, top: 0 }])
    .jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const img = await decodeForAnalysis(src);
  assert.is(img.width, 400);
  assert.is(img.height, 600);
  assert.is(img.ah, 512);
  // orientation 6 = rotate 90° clockwise: the white top-left square moves to the top-right
  assert.ok((img.luma[img.aw - 10] ?? 0) > 200 && (img.luma[10] ?? 255) < 100);
});

test('large image is analysed at <= 512 px (shrink-on-load) and fast', async () => {
  const big = await sharp({ create: { width: 6000, height: 4000, channels: 3, background: '#7a6' } })
    .composite([{ input: path.join(photos, 'crane/desimichael_crane-full.jpg') }]).jpeg({ quality: 85 }).toBuffer();
  const t0 = performance.now();
  const img = await decodeForAnalysis(big);
  const ms = performance.now() - t0;
  assert.is(Math.max(img.aw, img.ah), 512);
  assert.is(img.width, 6000);
  assert.ok(ms < 1500, `decode took ${ms.toFixed(0)} ms`);
  const q = qualityFromImage(img);
  assert.is(q.megapixels, 24);
});

test.run();
