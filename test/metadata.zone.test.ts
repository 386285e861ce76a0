import { test } from 'uvu';
import * as assert from 'uvu/assert';
import sharp from 'sharp';
import { exifFromTags } from '@tu/agent/internal/services/metadata/exif';
import { extractMetadata } from '@tu/agent/internal/services/metadata/extract';
import { toWireMetadata } from '@tu/agent/internal/services/metadata/service';

// Photos whose EXIF names a capture zone wrongly: the zone decides the instant that orders the
// machine record (agent/src/services/metadata/sort.ts), so a made-up zone is worse than none.
const uploadedAt = '2024-05-01T13:00:00.000Z';

async function photo(exif: { IFD2?: Record<string, string>; IFD3?: Record<string, string> }): Promise<Buffer> {
  return sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 120, g: 110, b: 100 } } })
    .jpeg()
    .withExif({ IFD0: { Make: 'Test' }, ...exif })
    .toBuffer();
}

test('a GPS time stamp out of range (10:70:00, 11:00:3600) gives no zone: the capture time stays camera local time', async () => {
  for (const stamp of ['10/1 70/1 0/1', '11/1 0/1 3600/1']) {
    const r = await extractMetadata(await photo({ IFD2: { DateTimeOriginal: '2024:05:01 12:00:00' }, IFD3: { GPSDateStamp: '2024:05:01', GPSTimeStamp: stamp } }), { uploadedAt });
    assert.is(r.exif.captureTimeZone, 'unknown', stamp);
    assert.is(r.exif.captureTime, '2024-05-01T12:00:00', stamp);
    const wire = toWireMetadata(r);
    assert.equal(wire.exif.captureLocalTime, { time: '2024-05-01T12:00:00', offset: 'unknown' }, stamp);
    assert.is(wire.exif.captureTime, undefined, stamp);
    assert.is(wire.record.lastSeenAt, uploadedAt, stamp);
    assert.is(wire.record.lastSeenAtSource, 'upload-time', stamp);
  }
  // A valid stamp still gives the zone (checked on real photos in metadata.exif.test.ts).
  const ok = await extractMetadata(await photo({ IFD2: { DateTimeOriginal: '2024:05:01 12:00:00' }, IFD3: { GPSDateStamp: '2024:05:01', GPSTimeStamp: '10/1 0/1 2/1' } }), { uploadedAt });
  assert.is(ok.exif.captureTime, '2024-05-01T12:00:00+02:00');
  assert.is(ok.record.lastSeenAt, '2024-05-01T10:00:00.000Z');
});

test('an offset tag no zone has (+14:59, -14:00, -13:00) is not taken as the capture zone; real ones at the edges are', async () => {
  for (const offset of ['+14:59', '-14:00', '-13:00']) {
    const r = await extractMetadata(await photo({ IFD2: { DateTimeOriginal: '2024:05:01 12:00:00', OffsetTimeOriginal: offset } }), { uploadedAt });
    assert.is(r.exif.captureTimeZone, 'unknown', offset);
    const wire = toWireMetadata(r);
    assert.is(wire.exif.captureLocalTime?.offset, 'unknown', offset);
    assert.is(wire.exif.captureTime, undefined, offset);
    assert.is(wire.record.lastSeenAtSource, 'upload-time', offset);
  }
  for (const [offset, instant] of [['+14:00', '2024-04-30T22:00:00.000Z'], ['+05:45', '2024-05-01T06:15:00.000Z'], ['-12:00', '2024-05-02T00:00:00.000Z']] as const) {
    const r = await extractMetadata(await photo({ IFD2: { DateTimeOriginal: '2024:05:01 12:00:00', OffsetTimeOriginal: offset } }), { uploadedAt: '2024-05-02T01:00:00.000Z' });
    assert.is(r.exif.captureTime, `2024-05-01T12:00:00${offset}`, offset);
    assert.is(r.record.lastSeenAt, instant, offset);
  }
});

test('a GPS altitude no photo is taken at (4294967295 m: -1 written unsigned) is dropped; the position stays', async () => {
  const gps = { GPSLatitudeRef: 'N', GPSLatitude: '45/1 30/1 0/1', GPSLongitudeRef: 'E', GPSLongitude: '10/1 0/1 0/1' };
  const r = await extractMetadata(await photo({ IFD3: { ...gps, GPSAltitude: '4294967295/1' } }), { uploadedAt });
  assert.equal(r.exif.gps, { latitude: 45.5, longitude: 10 });
  assert.equal(toWireMetadata(r).record.lastPosition, { latitude: 45.5, longitude: 10 });
  // Real altitudes stay (libvips cannot write GPSAltitudeRef, so the tags are given as exifr reads them).
  const tags = { GPSLatitude: [45, 30, 0], GPSLatitudeRef: 'N', GPSLongitude: [10, 0, 0], GPSLongitudeRef: 'E' };
  assert.is(exifFromTags({ ...tags, GPSAltitude: 430, GPSAltitudeRef: new Uint8Array([1]) }).gps?.altitude, -430, 'the Dead Sea shore');
  assert.is(exifFromTags({ ...tags, GPSAltitude: 8848 }).gps?.altitude, 8848);
});

test.run();
