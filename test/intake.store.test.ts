import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import sharp from 'sharp';
import { silentLogger, TuError } from '@tu/shared';
import { createIntake, openBlobStore, openDeviceState, openIntakeJournal, openPhotoHistory, sha256Sliced, sniffImageType, validateImage, makeThumbnail } from '@tu/agent';
import { readEmbedding, readThumbnailBase64, writeEmbedding, writeThumbnail } from '@tu/agent/internal/blobs/derived';
import { newAnalysisId, uploaded } from './support/fixtures.js';
import { intake, observer, startAllHandlers, startTestAgent, testConfig, tmpDir, until } from './support/harness.js';
import { photoBytes, pngBomb } from './support/real.js';
import { IMAGES_DIR } from './support/data.js';
import { listLabelledImages } from '@tu/agent/internal/services/vision/dataset';

const JPEG = 'forklift/imagenet_n03384352_forklift.jpg';
const limits = { maxUploadBytes: 25 * 1024 * 1024, maxPixels: 50_000_000 };

test('blob store: content-addressed ab/cd/<sha>, the same photo twice stored once', async () => {
  const dir = tmpDir();
  const blobs = await openBlobStore(dir);
  const bytes = photoBytes(JPEG);
  const a = await blobs.put(bytes);
  const b = await blobs.put(bytes);
  assert.ok(a.created);
  assert.not.ok(b.created);
  assert.is(a.sha256, b.sha256);
  assert.is(blobs.pathOf(a.sha256), path.join(dir, 'blobs', a.sha256.slice(0, 2), a.sha256.slice(2, 4), a.sha256));
  assert.equal(await blobs.read(a.sha256), bytes);
  const files = fs.readdirSync(path.dirname(blobs.pathOf(a.sha256)));
  assert.equal(files, [a.sha256], 'no temp files left');
});

test('blob store: files derived from a photo sit beside it, count in usedBytes, go with it on remove', async () => {
  const dir = tmpDir();
  const blobs = await openBlobStore(dir);
  const bytes = photoBytes(JPEG);
  const a = await blobs.put(bytes);
  const vector = Array.from({ length: 1280 }, (_, i) => Math.fround(Math.sin(i)));
  const ref = await writeEmbedding(blobs, a.sha256, 'mobilenet_v2_100_224_quant', vector);
  await writeThumbnail(blobs, a.sha256, Buffer.from([0xff, 0xd8, 0xff, 0xd9]));
  assert.equal(ref, { ref: { sha256: a.sha256, model: 'mobilenet_v2_100_224_quant' }, dim: 1280, dtype: 'float32' });
  assert.equal(await readEmbedding(blobs, ref), vector, 'float32 little-endian round trip');
  assert.is(await readThumbnailBase64(blobs, a.sha256), Buffer.from([0xff, 0xd8, 0xff, 0xd9]).toString('base64'));
  const files = fs.readdirSync(path.dirname(blobs.pathOf(a.sha256))).sort();
  assert.equal(files, [a.sha256, `${a.sha256}.mobilenet_v2_100_224_quant.f32`, `${a.sha256}.thumb.jpg`], 'beside the photo, no temp files left');
  const used = a.bytes + 1280 * 4 + 4;
  assert.is(blobs.usedBytes(), used);
  assert.is((await openBlobStore(dir)).usedBytes(), used, 'counted again at open');
  // A damaged file (truncated) is EMBEDDING_MISSING, as is a missing one.
  fs.truncateSync(`${blobs.pathOf(a.sha256)}.mobilenet_v2_100_224_quant.f32`, 100);
  try {
    await readEmbedding(blobs, ref);
    assert.unreachable('a truncated embedding was read');
  } catch (err) {
    assert.is((err as TuError).code, 'EMBEDDING_MISSING');
    assert.match((err as Error).message, /damaged \(100 bytes, 1280 float32 values expected\)/);
  }
  const reopened = await openBlobStore(dir);
  assert.is(await reopened.remove(a.sha256), a.bytes + 100 + 4);
  assert.equal(fs.readdirSync(path.dirname(blobs.pathOf(a.sha256))), [], 'the photo and its derived files are gone');
  assert.is(reopened.usedBytes(), 0);
  assert.is(await readThumbnailBase64(reopened, a.sha256), undefined);
  try {
    await readEmbedding(reopened, ref);
    assert.unreachable('a missing embedding was read');
  } catch (err) {
    assert.is((err as TuError).code, 'EMBEDDING_MISSING');
  }
});

test('thumbnail: small JPEG, ≤ 12 KB base64', async () => {
  const t = await makeThumbnail(photoBytes(JPEG), limits.maxPixels);
  assert.ok(t && t.toString('base64').length <= 12_000);
  const meta = await sharp(t).metadata();
  assert.is(meta.format, 'jpeg');
  assert.ok(Math.max(meta.width, meta.height) <= 160);
});

test('sniff by bytes: JPEG, PNG, WebP; anything else undefined', async () => {
  const img = sharp({ create: { width: 8, height: 8, channels: 3, background: '#123456' } });
  assert.is(sniffImageType(await img.clone().png().toBuffer()), 'image/png');
  assert.is(sniffImageType(await img.clone().webp().toBuffer()), 'image/webp');
  assert.is(sniffImageType(await img.clone().jpeg().toBuffer()), 'image/jpeg');
  assert.is(sniffImageType(await img.clone().gif().toBuffer()), undefined);
  assert.is(sniffImageType(Buffer.from('<html>')), undefined);
});

test('validateImage: declared PNG but JPEG bytes → the bytes win; bomb refused from the header', async () => {
  const v = await validateImage(photoBytes(JPEG), 'image/png', limits);
  assert.is(v.contentType, 'image/jpeg');
  const t0 = performance.now();
  try {
    await validateImage(pngBomb(20_000), 'image/png', limits);
    assert.unreachable('bomb accepted');
  } catch (err) {
    assert.instance(err, TuError);
    assert.is((err as TuError).code, 'IMAGE_TOO_MANY_PIXELS');
  }
  // Refused from the header, not by decoding 400 MP (which takes many seconds); generous for a shared, loaded machine.
  assert.ok(performance.now() - t0 < 3000);
});

test('validateImage: a progressive JPEG counts twice against the pixel limit (its decode needs much more memory)', async () => {
  const small = { ...limits, maxPixels: 4_000_000 };
  const img = sharp(photoBytes(JPEG)).resize(2500, 1000, { fit: 'fill' });
  const baseline = await img.clone().jpeg({ progressive: false }).toBuffer();
  const progressive = await img.clone().jpeg({ progressive: true }).toBuffer();
  assert.is((await validateImage(baseline, 'image/jpeg', small)).width, 2500, '2.5 MP baseline: within 4 MP');
  try {
    await validateImage(progressive, 'image/jpeg', small);
    assert.unreachable('2.5 MP progressive accepted under a 4 MP limit');
  } catch (err) {
    assert.is((err as TuError).code, 'IMAGE_TOO_MANY_PIXELS');
    assert.match((err as Error).message, /progressive JPEG of 2\.5 megapixels.*up to 2\.0 megapixels/);
  }
  // With the default limits every real photo passes, the 18 MP progressive ones included.
  for (const p of await listLabelledImages(IMAGES_DIR)) await validateImage(fs.readFileSync(p.file), 'image/jpeg', limits);
});

test('device state: the document survives reopen; no temp files left; references bounded', async () => {
  const dir = tmpDir();
  const d = await openDeviceState(dir, { maxReferences: 2 });
  await d.setMachine({ type: 'excavator', brand: 'Kobelco' });
  for (const sha of ['a', 'b', 'c']) await d.addReference({ sha256: sha.repeat(64), embedding: [1, 0], addedAt: new Date().toISOString() });
  const again = await openDeviceState(dir, { maxReferences: 2 });
  assert.is(again.machine()?.brand, 'Kobelco');
  assert.equal(again.references().map((r) => r.sha256[0]), ['b', 'c']);
  assert.equal(fs.readdirSync(dir).sort(), ['device.json']);
});

test('photo history: duplicate-safe, bounded per machine, O(1) per record', () => {
  const h = openPhotoHistory(path.join(tmpDir(), 'h.sqlite'), { maxPerMachine: 5, durability: 'normal' });
  for (let i = 0; i < 12; i++) h.record({ sha256: i.toString(16).padStart(64, '0'), embedding: [i, 1], machineId: 'm', takenAt: new Date().toISOString() });
  h.record({ sha256: (11).toString(16).padStart(64, '0'), embedding: [0, 0], machineId: 'm', takenAt: new Date().toISOString() });
  assert.is(h.count('m'), 5);
  const recent = h.recent('m');
  assert.equal(Array.from(recent[0]!.embedding), [11, 1], 'duplicate ignored, newest first');
  h.close();
});

test('intake journal: adds made together share commits of the writer thread; each resolves once its row is on disk', async () => {
  const agent = await startTestAgent();
  const up = await intake(agent);
  const ids = Array.from({ length: 40 }, () => newAnalysisId());
  const events = ids.map((id) => up.buildEvent('tu.image.uploaded', uploaded('gw-test', id), { subject: id }));
  await up.close();
  await agent.stop();
  const file = path.join(tmpDir(), 'intake.sqlite');
  const j = openIntakeJournal(file);
  const t0 = Date.now();
  await Promise.all(ids.map((id, i) => j.add({ analysisId: id, event: events[i]!, acceptedAt: t0 + i })));
  // Another connection sees every row once the adds resolved: they were committed, not queued.
  const other = openIntakeJournal(file);
  assert.equal(other.all().map((e) => e.analysisId), ids, 'all rows, oldest first');
  assert.ok(j.stats.commits < ids.length, `${j.stats.commits} commits for ${ids.length} adds`);
  assert.is(j.stats.added, ids.length);
  await j.remove(ids.slice(0, 30));
  assert.is(other.size(), 10);
  await j.close();
  await other.close();
  const again = openIntakeJournal(file);
  assert.equal(again.all().map((e) => e.analysisId), ids.slice(30), 'the rest survives a reopen');
  await again.close();
});

test('blob store: a hash given by the caller (streamed) and one computed in slices file the photo alike', async () => {
  const blobs = await openBlobStore(tmpDir());
  const bytes = Buffer.concat([photoBytes(JPEG), Buffer.alloc(3 * 1024 * 1024, 7)]);
  const expected = createHash('sha256').update(bytes).digest('hex');
  assert.is(await sha256Sliced(bytes), expected, 'sliced over several event-loop turns');
  const a = await blobs.put(bytes);
  assert.is(a.sha256, expected);
  const b = await blobs.put(bytes, expected);
  assert.equal([b.sha256, b.created], [expected, false]);
});

test('intake journal: an upload accepted before a crash is re-published on start and then cleared', async () => {
  const dataDir = tmpDir();
  // Life 1: build the upload event and journal it, as if killed right after the 202.
  const a1 = await startTestAgent({ config: testConfig({}, dataDir) });
  const up = await intake(a1);
  const blob = await a1.blobs.put(photoBytes(JPEG));
  const data = { ...uploaded('gw-test', newAnalysisId()), image: { sha256: blob.sha256, contentType: 'image/jpeg' as const, bytes: blob.bytes } };
  const event = up.buildEvent('tu.image.uploaded', data, { subject: data.analysisId });
  await up.close();
  await a1.stop();
  const j = openIntakeJournal(path.join(dataDir, 'intake.sqlite'));
  await j.add({ analysisId: data.analysisId, event, acceptedAt: Date.now() });
  await j.close();
  // Life 2: the agent re-publishes it; the orchestrator runs it.
  const a2 = await startTestAgent({ config: testConfig({}, dataDir) });
  const obs = await observer(a2);
  const handlers = await startAllHandlers(a2);
  try {
    await until(() => a2.orchestrator.status(data.analysisId)?.status === 'completed', 10_000, 'recovered analysis to complete');
    assert.is(a2.intake.stats.republished, 1);
    await until(() => a2.intake.pending() === 0, 5000, 'journal cleared');
    const j2 = openIntakeJournal(path.join(dataDir, 'intake.sqlite'));
    assert.is(j2.size(), 0);
    await j2.close();
  } finally {
    for (const h of handlers) await h.close();
    await obs.bus.close();
    await a2.stop();
  }
});

test('intake: an upload journalled but not published (the bus failed) is accepted: the journal sweep (or the next start) publishes it', async () => {
  const agent = await startTestAgent();
  const up = await intake(agent);
  const journal = openIntakeJournal(path.join(tmpDir(), 'intake.sqlite'));
  await up.close(); // every publish now fails with BUS_CLOSED
  const i = createIntake({ bus: up, blobs: agent.blobs, journal, limits, knows: () => false, capacity: () => ({ held: 0, max: 10 }), logger: silentLogger(), sweepMs: 50, redriveMs: 100 });
  try {
    // Before, the request failed here although the upload was journalled: the client sent the
    // photo again and both were analysed.
    const r = await i.accept(photoBytes(JPEG), 'image/jpeg', {});
    assert.is(i.pending(), 1, 'journalled');
    assert.is(journal.size(), 1);
    assert.ok(r.analysisId);
    assert.is(i.stats.accepted, 1);
  } finally {
    await i.stop();
    await journal.close();
    await agent.stop();
  }
});

test("intake: an upload's journal entry stays until the orchestrator's row of it is on disk, not only known in memory", async () => {
  const agent = await startTestAgent();
  const up = await intake(agent);
  const journal = openIntakeJournal(path.join(tmpDir(), 'intake.sqlite'));
  // The orchestrator knows every analysis at once; its row reaches the disk only when the test says.
  const onDisk = new Set<string>();
  const i = createIntake({ bus: up, blobs: agent.blobs, journal, limits, knows: () => true, stored: (id) => onDisk.has(id), capacity: () => ({ held: 0, max: 10 }), logger: silentLogger(), sweepMs: 50, redriveMs: 10_000 });
  try {
    const r = await i.accept(photoBytes(JPEG), 'image/jpeg', {});
    // Many sweeps later: before, an entry went 50 ms after the orchestrator knew it, written or not.
    await new Promise((res) => setTimeout(res, 400));
    assert.is(i.pending(), 1, 'still journalled while the row is not on disk');
    assert.is(journal.size(), 1);
    onDisk.add(r.analysisId);
    await until(() => i.pending() === 0, 2000, 'cleared once the row is on disk');
    assert.is(journal.size(), 0);
  } finally {
    await i.stop();
    await journal.close();
    await up.close();
    await agent.stop();
  }
});

test.run();
