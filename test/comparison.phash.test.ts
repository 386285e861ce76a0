import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { dhash, hammingDistance, phash } from '@tu/agent/internal/services/comparison/phash';
import { ComparisonError } from '@tu/agent/internal/services/comparison/errors';
import { DEFAULT_COMPARISON_THRESHOLDS } from '@tu/agent/internal/services/comparison/verdict';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const photos = process.env.TU_TESTDATA_DIR ?? path.resolve(repoRoot, '../shared/testdata/images');
const photo = (rel: string): string => path.join(photos, rel);
const T = DEFAULT_COMPARISON_THRESHOLDS.duplicateHamming;

async function reuploads(p: string): Promise<Buffer[]> {
  const m = await sharp(p).metadata();
  const w = m.autoOrient?.width ?? m.width ?? 0;
  return [
    await sharp(p).rotate().jpeg({ quality: 50 }).toBuffer(),
    await sharp(p).rotate().resize(Math.round(w / 2)).jpeg({ quality: 85 }).toBuffer(),
    await sharp(p).rotate().webp({ quality: 70 }).toBuffer(),
    await sharp(p).rotate().linear(1.1, 10).jpeg({ quality: 85 }).toBuffer(),
  ];
}

test('hash format and hamming distance', async () => {
  const h = await phash(photo('excavator/surya_img05.jpeg'));
  assert.match(h, /^[0-9a-f]{16}$/);
  assert.match(await dhash(photo('excavator/surya_img05.jpeg')), /^[0-9a-f]{16}$/);
  assert.is(hammingDistance(h, h), 0);
  assert.is(hammingDistance('0000000000000000', 'ffffffffffffffff'), 64);
  assert.is(hammingDistance('0000000000000000', '8000000000000001'), 2);
  assert.throws(() => hammingDistance('xyz', h), (e: unknown) => e instanceof ComparisonError && e.code === 'INVALID_HASH');
});

test('re-encoded, resized, WebP and brightened re-uploads are near-duplicates', async () => {
  const sample = ['excavator', 'wheel_loader', 'forklift', 'nameplate_text', 'exif_gps', 'negative']
    .flatMap((d) => readdirSync(photo(d)).filter((f) => /\.(jpe?g|webp)$/i.test(f)).slice(0, 3).map((f) => `${d}/${f}`));
  for (const rel of sample) {
    const h = await phash(photo(rel));
    for (const [i, buf] of (await reuploads(photo(rel))).entries()) {
      const d = hammingDistance(h, await phash(buf));
      assert.ok(d <= T, `${rel} variant ${i}: distance ${d} > ${T}`);
    }
  }
});

test('slight crop (2% per side) is still caught', async () => {
  for (const rel of ['excavator/surya_img05.jpeg', 'crane/nll_crane.jpg', 'tractor/rp_tractor.jpg']) {
    const m = await sharp(photo(rel)).metadata();
    const w = m.width ?? 0, h = m.height ?? 0;
    const cx = Math.round(w * 0.02), cy = Math.round(h * 0.02);
    const crop = await sharp(photo(rel)).extract({ left: cx, top: cy, width: w - 2 * cx, height: h - 2 * cy }).jpeg().toBuffer();
    const d = hammingDistance(await phash(photo(rel)), await phash(crop));
    assert.ok(d <= T, `${rel} crop distance ${d}`);
  }
});

test('different photos, including the same physical machine, are not near-duplicates', async () => {
  const sameMachine = [
    ['excavator/surya_img05.jpeg', 'excavator/surya_img11.jpeg'],
    ['excavator/surya_img05.jpeg', 'excavator/surya_img13.jpeg'],
    ['excavator/surya_img11.jpeg', 'excavator/surya_img13.jpeg'],
    ['telehandler/rp_jcb530s.jpg', 'telehandler/rp_jcb530s1.jpg'],
    ['telehandler/rp_jcb530s1.jpg', 'telehandler/rp_jcb530s2.jpg'],
    ['backhoe_loader/bigrock_IMG_1573.jpg', 'backhoe_loader/bigrock_IMG_1574.jpg'],
  ];
  for (const [a, b] of sameMachine) {
    const d = hammingDistance(await phash(photo(a as string)), await phash(photo(b as string)));
    assert.ok(d > T + 4, `${a} vs ${b}: ${d}`);
  }
  const all = ['excavator', 'wheel_loader', 'dump_truck', 'negative']
    .flatMap((d) => readdirSync(photo(d)).filter((f) => /\.(jpe?g|webp)$/i.test(f)).map((f) => photo(`${d}/${f}`)));
  const hashes = await Promise.all(all.map((p) => phash(p)));
  let min = 64;
  for (let i = 0; i < hashes.length; i++) for (let j = i + 1; j < hashes.length; j++) {
    min = Math.min(min, hammingDistance(hashes[i] as string, hashes[j] as string));
  }
  assert.ok(min > T, `closest different pair ${min}`);
});

test.run();
