import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { extractMetadata } from '@tu/agent/internal/services/metadata/extract';
import { categorize, colourCues } from '@tu/agent/internal/services/metadata/category';
import { decodeForAnalysis } from '@tu/agent/internal/services/metadata/decode';
import { MetadataError } from '@tu/agent/internal/services/metadata/errors';
import { captureTimeUtc, photoQuality, sortIntoRecord } from '@tu/agent/internal/services/metadata/sort';
import type { RecognitionHint } from '@tu/agent/internal/services/metadata/types';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const photos = process.env.TU_TESTDATA_DIR ?? path.resolve(repoRoot, '../shared/testdata/images');
const photo = (rel: string): string => path.join(photos, rel);
const uploadedAt = '2026-01-15T08:00:00.000Z';

test('field photo with GPS: full result, record sorted, timings present', async () => {
  const rec: RecognitionHint = { machineType: 'excavator', confidence: 0.82, imagenetTopK: [{ label: 'snowplow', index: 803, score: 0.38 }] };
  const r = await extractMetadata(photo('excavator/bigrock_IMG_0220.jpg'), {
    uploadedAt, recognition: rec, registered: { id: 'CAT-305-1', type: 'excavator', brand: 'Caterpillar', model: '305', serialNumber: 'CAT0305X', name: 'Mini 1' },
  });
  assert.is(r.quality.width, 640);
  assert.equal(r.warnings, []);
  assert.is(r.category, 'overview');
  assert.equal(r.record, {
    machineId: 'CAT-305-1', name: 'Mini 1', type: 'excavator', typeSource: 'registered', brand: 'Caterpillar', model: '305', serialNumber: 'CAT0305X',
    lastSeenAt: '2018-01-26T19:20:28.770Z', lastSeenAtSource: 'capture-time',
    lastPosition: r.exif.gps, photoQuality: 'good', photoCategory: 'overview',
  });
  assert.ok(r.timings.exifMs >= 0 && r.timings.qualityMs > 0);
});

test('Buffer input without EXIF: lastSeenAt falls back to upload time', async () => {
  const buf = readFileSync(photo('excavator/surya_img05.jpeg'));
  const r = await extractMetadata(buf, { uploadedAt });
  assert.equal(r.exif, {});
  assert.is(r.record.lastSeenAt, uploadedAt);
  assert.is(r.record.lastSeenAtSource, 'upload-time');
  assert.is(r.record.type, undefined);
});

test('decode failures are typed errors', async () => {
  const err = async (input: string | Buffer, opts: { maxPixels?: number } = {}): Promise<MetadataError> => {
    try { await extractMetadata(input, { uploadedAt, ...opts }); } catch (e) { return e as MetadataError; }
    throw new Error('expected a failure');
  };
  const e1 = await err(Buffer.from('not an image at all'));
  assert.instance(e1, MetadataError);
  assert.is(e1.code, 'IMAGE_DECODE_FAILED');
  const jpeg = readFileSync(photo('excavator/surya_img05.jpeg'));
  assert.is((await err(jpeg.subarray(0, Math.floor(jpeg.length / 3)))).code, 'IMAGE_DECODE_FAILED');
  const e3 = await err(photo('excavator/surya_img05.jpeg'), { maxPixels: 1e6 });
  assert.is(e3.code, 'IMAGE_TOO_LARGE');
  assert.match(e3.message, /maxPixels/);
  assert.is((await err(Buffer.alloc(0))).code, 'IMAGE_DECODE_FAILED');
});

test('category: nameplates and documents via labels, machines via labels or machineType, scenery → other', async () => {
  const cues = async (rel: string) => colourCues(await decodeForAnalysis(photo(rel)));
  const top = (xs: [string, number, number][]): RecognitionHint => ({ machineType: 'unknown', confidence: 0.2, imagenetTopK: xs.map(([label, index, score]) => ({ label, index, score })) });
  // ImageNet top-k recorded with MobileNet v1 0.25 on these photos (scripts/imagenet-top5.json)
  assert.is(categorize(await cues('nameplate_text/atha_dumpster-20yd.jpg'), top([['scoreboard', 781, 0.41], ['passenger car', 705, 0.179]])).category, 'nameplate');
  assert.is(categorize(await cues('nameplate_text/gas_nameplate.jpg'), top([['pillow', 721, 0.158], ['apron', 411, 0.137]])).category, 'nameplate');
  assert.is(categorize(await cues('excavator/surya_img05.jpeg'), top([['harvester', 595, 0.602], ['plow', 730, 0.242]])).category, 'overview');
  assert.is(categorize(await cues('negative/imagenet_alp.jpg'), top([['valley', 979, 0.871], ['alp', 970, 0.1]])).category, 'other');
  assert.is(categorize(await cues('negative/imagenet_crane-bird.jpg'), top([['American egret', 132, 0.415], ['crane', 134, 0.27]])).category, 'other');
  assert.is(categorize(await cues('excavator/css_youtube-342.jpg'), { machineType: 'excavator', confidence: 0.9 }).category, 'overview');
  assert.is(categorize(await cues('excavator/css_youtube-342.jpg')).category, 'overview', 'no recognition → assumed machine photo');
});

test('sort: photo quality grades, implausible capture time, assumed offset', () => {
  assert.is(photoQuality([]), 'good');
  assert.is(photoQuality(['too_small']), 'fair');
  assert.is(photoQuality(['blurred']), 'poor');
  assert.is(photoQuality(['too_dark', 'low_contrast']), 'poor');
  assert.is(captureTimeUtc({ captureTime: '2018-01-26T12:20:28', captureTimeZone: 'unknown' }), null);
  assert.is(captureTimeUtc({ captureTime: '2018-01-26T12:20:28', captureTimeZone: 'unknown' }, '+01:00'), '2018-01-26T11:20:28.000Z');
  const future = sortIntoRecord({ exif: { captureTime: '2030-01-01T00:00:00Z', captureTimeZone: 'exif-offset' }, warnings: [], category: 'overview', uploadedAt });
  assert.is(future.lastSeenAtSource, 'upload-time');
  const recognised = sortIntoRecord({ exif: {}, warnings: [], category: 'overview', uploadedAt, recognition: { machineType: 'forklift', confidence: 0.9 } });
  assert.is(recognised.type, 'forklift');
  assert.is(recognised.typeSource, 'recognition', 'a recognised type is marked as such (the relay keeps it as evidence only)');
  const weak = sortIntoRecord({ exif: {}, warnings: [], category: 'overview', uploadedAt, recognition: { machineType: 'forklift', confidence: 0.3 } });
  assert.is(weak.type, undefined);
});

test('degraded upload is graded poor', async () => {
  const dark = await sharp(photo('wheel_loader/surya_wheel-loader.jpg')).blur(3).linear(0.2, 0).jpeg().toBuffer();
  const r = await extractMetadata(dark, { uploadedAt });
  assert.ok(r.warnings.includes('blurred') && r.warnings.includes('too_dark'));
  assert.is(r.record.photoQuality, 'poor');
});

test.run();
