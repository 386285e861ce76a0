import sharp from 'sharp';
import { readFile } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VisionError } from '@tu/agent/internal/services/vision/errors';
import { preprocessImage } from '@tu/agent/internal/services/vision/preprocess';
import { photo } from './support/data.js';



async function expectCode(p: Promise<unknown>, code: string): Promise<VisionError> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, VisionError);
    assert.is((err as VisionError).code, code, (err as Error).message);
    return err as VisionError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

test('real 18 MP photo: 224x224x3 floats in [0,1], original size reported', async () => {
  const img = await preprocessImage(photo('tractor/rp_tractor.jpg'));
  assert.is(img.data.length, 224 * 224 * 3);
  assert.is(img.width, 5174);
  assert.is(img.height, 3449);
  let min = 1;
  let max = 0;
  for (const v of img.data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  assert.ok(min >= 0 && max <= 1 && max > min);
  assert.ok(img.decodeMs > 0 && img.decodeMs < 2000);
});

test('Buffer input works like a path', async () => {
  const buf = await readFile(photo('forklift/alltech_forklift.jpg'));
  const a = await preprocessImage(buf);
  const b = await preprocessImage(photo('forklift/alltech_forklift.jpg'));
  assert.equal(Array.from(a.data.slice(0, 50)), Array.from(b.data.slice(0, 50)));
});

test('PNG with alpha: flattened onto white, 3 channels', async () => {
  const png = await sharp({ create: { width: 64, height: 64, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
  const img = await preprocessImage(png);
  assert.is(img.data.length, 224 * 224 * 3);
  assert.ok(Math.abs((img.data[0] ?? 0) - 1) < 1e-6, 'transparent pixels become white');
});

test('EXIF orientation is applied (portrait stored as landscape + orientation 6)', async () => {
  // 300x100: left half red, right half blue; orientation 6 = rotate 90° clockwise for display.
  const left = await sharp({ create: { width: 150, height: 100, channels: 3, background: '#ff0000' } }).png().toBuffer();
  const jpg = await sharp({ create: { width: 300, height: 100, channels: 3, background: '#0000ff' } })
    .composite([{ input: left, left: 0, top: 0 }])
    .jpeg()
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const img = await preprocessImage(jpg, { fit: 'fill' });
  assert.is(img.width, 100);
  assert.is(img.height, 300);
  // After rotating clockwise, the red (left) half is on top.
  const top = [img.data[(10 * 224 + 112) * 3] ?? 0, img.data[(10 * 224 + 112) * 3 + 2] ?? 0];
  const bottom = [img.data[(210 * 224 + 112) * 3] ?? 0, img.data[(210 * 224 + 112) * 3 + 2] ?? 0];
  assert.ok((top[0] ?? 0) > 0.8 && (top[1] ?? 1) < 0.2, `top should be red, got ${top}`);
  assert.ok((bottom[1] ?? 0) > 0.8 && (bottom[0] ?? 1) < 0.2, `bottom should be blue, got ${bottom}`);
});

test('truncated JPEG → IMAGE_DECODE_FAILED (no crash)', async () => {
  const buf = await readFile(photo('forklift/alltech_forklift.jpg'));
  await expectCode(preprocessImage(buf.subarray(0, Math.floor(buf.length / 3))), 'IMAGE_DECODE_FAILED');
});

test('garbage bytes → IMAGE_DECODE_FAILED', async () => {
  await expectCode(preprocessImage(Buffer.from('this is not an image at all')), 'IMAGE_DECODE_FAILED');
});

test('missing file → IMAGE_NOT_FOUND', async () => {
  await expectCode(preprocessImage('/nonexistent/photo.jpg'), 'IMAGE_NOT_FOUND');
});

test('10000x10000 PNG (100 MP) is refused by the pixel limit before decoding', async () => {
  const bomb = await sharp({ create: { width: 10000, height: 10000, channels: 3, background: '#808080' } })
    .png({ compressionLevel: 9, palette: true, colours: 2 })
    .toBuffer();
  assert.ok(bomb.length < 1_000_000, `bomb is small on disk (${bomb.length} bytes)`);
  const t0 = performance.now();
  const err = await expectCode(preprocessImage(bomb), 'IMAGE_TOO_LARGE');
  const ms = performance.now() - t0;
  assert.ok(ms < 100, `refused in ${ms.toFixed(1)} ms: header only, no decode`);
  assert.match(err.message, /pixel limit|above the limit/);
  // A lower explicit limit also refuses an ordinary photo.
  await expectCode(preprocessImage(photo('tractor/rp_tractor.jpg'), { maxPixels: 1e6 }), 'IMAGE_TOO_LARGE');
});

test('fit modes all give the model size', async () => {
  for (const fit of ['cover', 'fill', 'contain'] as const) {
    const img = await preprocessImage(photo('crane/nll_crane.jpg'), { fit });
    assert.is(img.data.length, 224 * 224 * 3);
  }
});

test.run();
