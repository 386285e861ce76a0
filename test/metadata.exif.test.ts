import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { exifFromTags, parseExifDate, readExif } from '@tu/agent/internal/services/metadata/exif';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const photos = process.env.TU_TESTDATA_DIR ?? path.resolve(repoRoot, '../shared/testdata/images');
const photo = (rel: string): string => path.join(photos, rel);

test('every exif_gps photo yields a GPS position and a capture time', async () => {
  const files = readdirSync(photo('exif_gps')).filter((f) => /\.jpe?g$/i.test(f));
  assert.ok(files.length >= 5);
  for (const f of files) {
    const e = await readExif(photo(`exif_gps/${f}`));
    assert.ok(e.gps, `${f} has GPS`);
    assert.ok(Math.abs(e.gps.latitude) <= 90 && Math.abs(e.gps.longitude) <= 180);
    assert.ok(e.captureTime, `${f} has capture time`);
    assert.ok(e.camera?.make, `${f} has make`);
  }
});

test('Pixel photo: signed coordinates, altitude, GPS-derived +02:00 offset', async () => {
  const e = await readExif(photo('exif_gps/exifr_IMG_20180725_163423-tiny.jpg'));
  assert.ok(Math.abs((e.gps?.latitude ?? 0) - 50.2996) < 1e-3);
  assert.ok(Math.abs((e.gps?.longitude ?? 0) - 14.8203) < 1e-3);
  assert.is(e.gps?.altitude, 252);
  assert.is(e.captureTime, '2018-07-25T16:34:23.935+02:00');
  assert.is(e.captureTimeZone, 'gps-utc');
  assert.equal(e.camera, { make: 'Google', model: 'Pixel' });
  assert.is(e.orientation, 1);
});

test('western longitude is negative; Utah photo gets -07:00 from GPS time', async () => {
  const e = await readExif(photo('excavator/bigrock_IMG_0220.jpg'));
  assert.ok((e.gps?.longitude ?? 0) < -112 && (e.gps?.latitude ?? 0) > 41);
  assert.is(e.captureTime, '2018-01-26T12:20:28.770-07:00');
});

test('OffsetTimeOriginal is used when present', async () => {
  const e = await readExif(photo('nameplate_text/homelab_nameplate.jpg'));
  assert.is(e.captureTime, '2025-07-29T16:14:03.004-05:00');
  assert.is(e.captureTimeZone, 'exif-offset');
  assert.is(e.gps, undefined);
});

test('camera GPS clock a day off → zone unknown, wall-clock kept without designator', async () => {
  const e = await readExif(photo('exif_gps/exifsamples_DSCN0010.jpg'));
  assert.is(e.captureTime, '2008-10-22T16:28:39');
  assert.is(e.captureTimeZone, 'unknown');
  assert.is(e.gps?.altitude, undefined);
});

test('falls back to ModifyDate; result does not depend on process TZ', async () => {
  const e = await readExif(photo('negative/sakthi_anna_letter.jpg'));
  assert.is(e.captureTimeTag, 'ModifyDate');
  assert.is(e.captureTime, '2015-02-07T15:12:03');
});

test('no EXIF → empty object', async () => {
  assert.equal(await readExif(photo('negative/imagenet_alp.jpg')), {});
  const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#888' } }).png().toBuffer();
  assert.equal(await readExif(png), {});
});

test('corrupt or foreign input never throws', async () => {
  const jpeg = readFileSync(photo('exif_gps/exifsamples_DSCN0021.jpg'));
  const broken = Buffer.from(jpeg.subarray(0, 2000));
  broken.fill(0xff, 30, 400); // smash the TIFF header inside APP1
  const e1 = await readExif(broken);
  assert.type(e1, 'object');
  const e2 = await readExif(Buffer.from('definitely not an image'));
  assert.ok(Array.isArray(e2.notes) && e2.notes.length > 0);
  const e3 = await readExif(path.join(photos, 'does-not-exist.jpg'));
  assert.ok(e3.notes?.[0]?.includes('EXIF unreadable'));
});

test('tag mapping: southern/western refs, altitude below sea level, invalid values', () => {
  const e = exifFromTags({
    GPSLatitude: [33, 52, 4.2], GPSLatitudeRef: 'S', GPSLongitude: [151, 12, 36], GPSLongitudeRef: 'E',
    GPSAltitude: 12, GPSAltitudeRef: new Uint8Array([1]), Orientation: 6,
    DateTimeOriginal: '0000:00:00 00:00:00', CreateDate: '2021:03:04 05:06:07', OffsetTimeDigitized: '+11:00',
  });
  assert.ok((e.gps?.latitude ?? 0) < -33.8);
  assert.is(e.gps?.altitude, -12);
  assert.is(e.orientation, 6);
  assert.is(e.captureTime, '2021-03-04T05:06:07+11:00');
  assert.is(e.captureTimeTag, 'CreateDate');
  const bad = exifFromTags({ GPSLatitude: [0, 0, 0], GPSLongitude: [0, 0, 0], Orientation: 9 });
  assert.is(bad.gps, undefined);
  assert.is(bad.orientation, undefined);
  assert.is(bad.notes?.length, 2);
  assert.is(parseExifDate('2021:02:30 10:00:00'), null);
  assert.is(exifFromTags({ GPSLatitude: [10, 75, 0], GPSLatitudeRef: 'N', GPSLongitude: [12, 30, 0], GPSLongitudeRef: 'E' }).gps, undefined, '75 minutes is no position');
});

test('a camera clock reset to 1970 (before 1970 in UTC with its offset) is ignored with a note; a long Make is cut to what the message carries', () => {
  const e = exifFromTags({ DateTimeOriginal: '1970:01:01 00:00:00', OffsetTimeOriginal: '+01:00', Make: 'Caterpillar Inc. '.repeat(20), Model: 'X' });
  assert.is(e.captureTime, undefined);
  assert.match(e.notes?.join(' ') ?? '', /1970:01:01 00:00:00 is out of range/);
  assert.is(e.camera?.make?.length, 128, 'cut at the 128 characters the message carries');
  assert.is(parseExifDate('1950:06:01 10:00:00'), null);
  assert.is(parseExifDate('9999:12:31 23:59:59'), null, 'with a negative offset it would be year 10000 in UTC');
  // Never half of a surrogate pair at the cut.
  const emoji = exifFromTags({ Make: `${'a'.repeat(127)}😀` });
  assert.is(emoji.camera?.make, 'a'.repeat(127));
});

test.run();
