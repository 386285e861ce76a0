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
import { captureTimeUtc, judgeCaptureTime, photoQuality, sortIntoRecord } from '@tu/agent/internal/services/metadata/sort';
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

test('capture time judged against the upload time: drift tolerance, zone-less times across all zones, before 2000 (issue 8 finding 10)', () => {
  const up = '2026-03-01T12:00:00.000Z';
  const judge = (captureTime: string, zone: 'exif-offset' | 'unknown', assumed?: string) => judgeCaptureTime({ captureTime, captureTimeZone: zone }, up, assumed);
  assert.equal(judge('2026-03-01T12:09:00+00:00', 'exif-offset'), { plausible: true }, '9 min of camera clock drift is tolerated');
  assert.is(judge('2026-03-01T12:11:00+00:00', 'exif-offset')?.plausible, false);
  const ahead = judge('2026-03-02T11:00:00+00:00', 'exif-offset');
  assert.ok(ahead?.plausible === false && ahead.problem.reason === 'after-upload');
  assert.match(ahead.problem.message, /^capture time 2026-03-02T11:00:00.000Z is 23 h after the gateway received the photo \(2026-03-01T12:00:00.000Z\)/);
  // The offset is part of the instant: 23:00 at UTC+12 is 11:00 UTC, before the upload.
  assert.equal(judge('2026-03-01T23:00:00+12:00', 'exif-offset'), { plausible: true });
  // Without a zone, a wall clock up to 14 h (+ drift) ahead can be a camera east of UTC: not flagged.
  assert.equal(judge('2026-03-02T02:05:00', 'unknown'), { plausible: true });
  assert.is(judge('2026-03-02T02:11:00', 'unknown')?.plausible, false, 'even at UTC+14 that is 11 min after the upload');
  // With an assumed zone the assumed instant is judged (and used when plausible).
  assert.is(judge('2026-03-01T14:00:00', 'unknown', '+00:00')?.plausible, false);
  assert.is(judge('2026-03-01T14:00:00', 'unknown', '+02:00')?.plausible, true);
  const old = judge('1999-12-31T10:00:00', 'unknown');
  assert.ok(old?.plausible === false && old.problem.reason === 'before-2000');
  assert.equal(judge('1999-12-31T13:00:00', 'unknown'), { plausible: true }, 'at UTC-12 that is already 2000');
  assert.is(judgeCaptureTime({}, up), undefined, 'no capture time, nothing to judge');
  // The record follows the verdict: a flagged time never becomes lastSeenAt.
  const rec = sortIntoRecord({ exif: { captureTime: '2026-03-02T11:00:00+00:00', captureTimeZone: 'exif-offset', gps: { latitude: 1.5, longitude: 1.5 } }, warnings: [], category: 'overview', uploadedAt: up });
  assert.equal([rec.lastSeenAt, rec.lastSeenAtSource], [up, 'upload-time']);
});

test('a capture time without a zone: around the upload the upload time dates the sighting; long before it, the latest instant the time can be', () => {
  const zoneless = (uploadedAt: string) => sortIntoRecord({ exif: { captureTime: '2024-05-01T12:00:00', captureTimeZone: 'unknown', gps: { latitude: 1.5, longitude: 1.5 } }, warnings: [], category: 'overview', uploadedAt });
  // Read at UTC-12 the camera time is 2024-05-02 00:00 UTC: an upload before that may be the capture's own moment.
  assert.equal(pick(zoneless('2024-05-01T23:00:00.000Z')), ['2024-05-01T23:00:00.000Z', 'upload-time']);
  assert.equal(pick(zoneless('2024-05-02T00:00:00.000Z')), ['2024-05-02T00:00:00.000Z', 'upload-time']);
  // Uploaded later (an old photo sent now): the photo was taken by 2024-05-02 00:00 UTC at the latest, not at the upload.
  assert.equal(pick(zoneless('2024-05-02T00:00:01.000Z')), ['2024-05-02T00:00:00.000Z', 'capture-time-latest']);
  assert.equal(pick(zoneless('2026-12-01T08:00:00.000Z')), ['2024-05-02T00:00:00.000Z', 'capture-time-latest']);
  // An assumed zone gives the instant itself; an implausible time still gives the upload time.
  assert.equal(pick(sortIntoRecord({ exif: { captureTime: '2024-05-01T12:00:00', captureTimeZone: 'unknown' }, warnings: [], category: 'overview', uploadedAt: '2026-12-01T08:00:00.000Z', assumedUtcOffset: '+02:00' })), ['2024-05-01T10:00:00.000Z', 'capture-time']);
  assert.equal(pick(sortIntoRecord({ exif: { captureTime: '1999-01-01T12:00:00', captureTimeZone: 'unknown' }, warnings: [], category: 'overview', uploadedAt: '2026-12-01T08:00:00.000Z' })), ['2026-12-01T08:00:00.000Z', 'upload-time']);
});

const pick = (r: { lastSeenAt?: string; lastSeenAtSource?: string }): [string | undefined, string | undefined] => [r.lastSeenAt, r.lastSeenAtSource];

test('degraded upload is graded poor', async () => {
  const dark = await sharp(photo('wheel_loader/surya_wheel-loader.jpg')).blur(3).linear(0.2, 0).jpeg().toBuffer();
  const r = await extractMetadata(dark, { uploadedAt });
  assert.ok(r.warnings.includes('blurred') && r.warnings.includes('too_dark'));
  assert.is(r.record.photoQuality, 'poor');
});

test('EXIF the reader misses in a file (WebP; behind a big JFIF header) comes from the block the decoder found; transparency reads as white', async () => {
  const base = await sharp(photo('excavator/surya_img05.jpeg')).resize(640).toBuffer();
  const exif = { IFD0: { Make: 'Canon' }, IFD2: { DateTimeOriginal: '2024:06:01 12:00:00', OffsetTimeOriginal: '+02:00' } };
  const webp = await sharp(base).webp().withExif(exif).toBuffer();
  const r = await extractMetadata(webp, { uploadedAt });
  assert.is(r.exif.captureTime, '2024-06-01T12:00:00+02:00', JSON.stringify(r.exif));
  assert.is(r.exif.camera?.make, 'Canon');
  // A cut-out: the photo's pixels with the outer half transparent.
  const { data, info } = await sharp(base).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  for (let y = 0; y < info.height; y++) for (let x = 0; x < info.width; x++) if (x < info.width / 4 || x > (3 * info.width) / 4) data[(y * info.width + x) * 4 + 3] = 0;
  const cutout = await extractMetadata(await sharp(data, { raw: info }).png().toBuffer(), { uploadedAt });
  const opaque = await extractMetadata(base, { uploadedAt });
  assert.not.ok(cutout.warnings.includes('too_dark'), JSON.stringify(cutout.quality));
  assert.ok(cutout.quality.brightness >= opaque.quality.brightness, `transparent areas count as white (${cutout.quality.brightness} vs ${opaque.quality.brightness})`);
});

test.run();
