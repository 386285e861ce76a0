import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock, silentLogger, systemClock, type TuError } from '@tu/shared';
import { makeThumbnail, openBlobStore, openPhotoHistory, type Agent } from '@tu/agent';
import { writeThumbnail } from '@tu/agent/internal/blobs/derived';
import { createStorageQuota } from '@tu/agent/internal/blobs/quota';
import { inject, startAllHandlers, startTestAgent, testConfig, tmpDir, until } from './support/harness.js';
import { photoBytes } from './support/real.js';

// Uploads arriving together at the storage quota (agent/src/blobs/quota.ts, intake/intake.ts,
// blobs/store.ts): what one upload does between the quota and its journal entry must hold
// while another one makes room.

const limits = { maxUploadBytes: 25 * 1024 * 1024, maxPixels: 50_000_000 };
/** Real photos of about the same size (92–100 kB), and one small one (22 kB). */
const MID = ['wheel_loader/css_construction-823.jpg', 'crane/imagenet_n03126707_crane.jpg', 'exif_gps/exifr_iptc-agency-photographer-example.jpg', 'crane/css_4.jpg'] as const;
const SMALL = 'forklift/rf_forklift_8AOVQHJCB7PN.jpg';

/**
 * A data directory whose blob store already holds a 1 MB photo no analysis refers to: the quota
 * never evicts it (it walks analyses' photos only), and storage.maxBytes may be no less than 1 MiB.
 */
async function paddedDataDir(prefix: string): Promise<string> {
  const dir = tmpDir(prefix);
  await (await openBlobStore(dir)).put(photoBytes('excavator/bigrock_excavation.jpg'));
  return dir;
}

/** Bytes of every file under dir (what usedBytes must match). */
function bytesOnDisk(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const f = path.join(dir, e.name);
    n += e.isDirectory() ? bytesOnDisk(f) : fs.statSync(f).size;
  }
  return n;
}

const upload = (agent: Agent, bytes: Buffer) => inject(agent, { method: 'POST', url: '/api/v1/images', payload: bytes, headers: { 'content-type': 'image/jpeg' } });

test('blob store: the same derived file written by several uploads at once is counted once', async () => {
  const blobs = await openBlobStore(tmpDir('tu-derived-race-'));
  const bytes = photoBytes(MID[0]);
  const thumb = (await makeThumbnail(bytes, limits.maxPixels))!;
  const { sha256 } = await blobs.put(bytes);
  // All eight read the file's old size (none) before any of them renames its copy into place.
  await Promise.all(Array.from({ length: 8 }, () => writeThumbnail(blobs, sha256, thumb)));
  assert.is(blobs.usedBytes(), bytes.byteLength + thumb.byteLength, 'the photo and one thumbnail');
  assert.is(blobs.usedBytes(), bytesOnDisk(blobs.root), 'as many bytes as are on disk');
  // Replaced by a smaller one, then removed: the count follows.
  await Promise.all([writeThumbnail(blobs, sha256, thumb.subarray(0, 100)), writeThumbnail(blobs, sha256, thumb.subarray(0, 100))]);
  assert.is(blobs.usedBytes(), bytes.byteLength + 100);
  assert.is(await blobs.remove(sha256), bytes.byteLength + 100);
  assert.is(blobs.usedBytes(), 0);
});

test('storage quota: room made for a photo is reserved until released, so uploads arriving together cannot overfill it', async () => {
  const dir = tmpDir('tu-quota-reserve-');
  const blobs = await openBlobStore(dir);
  const history = openPhotoHistory(path.join(dir, 'history.sqlite'));
  try {
    const photo = photoBytes(MID[0]);
    const p = photo.byteLength;
    const base = history.usedBytes();
    const quota = createStorageQuota({ blobs, history, maxBytes: base + 2 * p + Math.floor(p / 2), imagesByAge: () => [], needed: () => ({ analyses: new Set(), shas: new Set() }), clock: systemClock, logger: silentLogger() });
    // Three at once (no put in between): room for two.
    const [a, b, c] = await Promise.allSettled([quota.makeRoom(p), quota.makeRoom(p), quota.makeRoom(p)]);
    assert.is(a.status, 'fulfilled');
    assert.is(b.status, 'fulfilled');
    assert.is(c.status, 'rejected', 'the third does not fit beside the two reserved');
    assert.is(((c as PromiseRejectedResult).reason as TuError).code, 'STORAGE_FAILED');
    const first = (a as PromiseFulfilledResult<{ release(): void }>).value;
    const second = (b as PromiseFulfilledResult<{ release(): void }>).value;
    // The first is stored: counted by the blob store now, its reservation goes (twice is once).
    await blobs.put(photo);
    first.release();
    first.release();
    await quota.makeRoom(p).then(
      () => assert.unreachable('a stored photo and a reservation leave no room for a third'),
      (err: TuError) => assert.is(err.code, 'STORAGE_FAILED'),
    );
    // The second upload failed: its room is free again.
    second.release();
    const third = await quota.makeRoom(p);
    third.release();
    assert.is(quota.status().usedBytes, base + p, 'status counts what is stored');
  } finally {
    history.close();
  }
});

test('storage quota: a finished analysis settles on the state store\'s clock, not the host\'s', async () => {
  const dir = tmpDir('tu-quota-settle-');
  const blobs = await openBlobStore(dir);
  const history = openPhotoHistory(path.join(dir, 'history.sqlite'));
  try {
    const photo = photoBytes(MID[0]);
    const { sha256 } = await blobs.put(photo);
    // The store wrote the analysis's last state at its clock's "now", a year after the host's.
    const clock = new ManualClock(Date.now() + 365 * 24 * 3600_000);
    const finishedAt = clock.now();
    const row = { row: 1, analysisId: 'a-1', sha256, finished: true, updatedAt: finishedAt };
    const quota = createStorageQuota({ blobs, history, maxBytes: history.usedBytes() + photo.byteLength + 10, imagesByAge: (after) => (after < 1 ? [row] : []), needed: () => ({ analyses: new Set(), shas: new Set() }), settleMs: 5_000, clock, logger: silentLogger() });
    // Just finished by that clock: its terminal event may still be on its way to the outbox.
    await quota.makeRoom(photo.byteLength).then(
      () => assert.unreachable('a photo finished a moment ago is not evicted'),
      (err: TuError) => assert.is(err.code, 'STORAGE_FAILED'),
    );
    assert.is(quota.status().evictedBlobs, 0);
    clock.advance(5_001);
    const r = await quota.makeRoom(photo.byteLength);
    r.release();
    assert.is(quota.status().evictedBlobs, 1, 'settled: evicted');
  } finally {
    history.close();
  }
});

test('agent: photos uploaded together stay within storage.maxBytes, and a refused or stored upload frees its reservation', async () => {
  const photos = MID.map((f) => photoBytes(f));
  const small = photoBytes(SMALL);
  // Nothing evictable (no handlers: every analysis stays open). Room for any two of the four
  // with their thumbnails, and after that still for the small photo, never for a third.
  const thumbs = 2 * 9_000;
  const twoLargest = [...photos].map((b) => b.byteLength).sort((x, y) => y - x).slice(0, 2).reduce((x, y) => x + y, 0);
  const dir = await paddedDataDir('tu-quota-together-');
  const agent = await startTestAgent({ config: testConfig({}, dir) });
  const base = agent.blobs.usedBytes() + agent.history.usedBytes();
  await agent.stop();
  const maxBytes = base + twoLargest + thumbs + small.byteLength + 9_000;
  const agent2 = await startTestAgent({ config: testConfig({ 'storage.maxBytes': maxBytes }, dir) });
  try {
    assert.ok(photos.map((b) => b.byteLength).sort((x, y) => x - y).slice(0, 3).reduce((x, y) => x + y, 0) > maxBytes - base, 'three never fit');
    const rs = await Promise.all(photos.map((b) => upload(agent2, b)));
    const statuses = rs.map((r) => r.statusCode);
    assert.is(statuses.filter((s) => s === 202).length, 2, `two accepted: ${statuses.join(',')}`);
    assert.is(statuses.filter((s) => s === 507).length, 2, `two refused: ${statuses.join(',')}`);
    for (const r of rs.filter((x) => x.statusCode === 507)) assert.is(r.json().error.code, 'STORAGE_FAILED');
    const q = (await inject(agent2, { method: 'GET', url: '/api/v1/health' })).json().storage.quota as { usedBytes: number; maxBytes: number };
    assert.ok(q.usedBytes <= maxBytes, `within the quota: ${q.usedBytes} <= ${maxBytes}`);
    // Reservations of the two stored and the two refused are gone: the small photo fits.
    const r = await upload(agent2, small);
    assert.is(r.statusCode, 202, r.body);
  } finally {
    await agent2.stop();
  }
});

test('agent: a photo already stored is taken again while the quota is full: it needs no room', async () => {
  const X = photoBytes(MID[0]);
  const dir = await paddedDataDir('tu-quota-again-');
  const agent = await startTestAgent({ config: testConfig({}, dir) });
  const base = agent.blobs.usedBytes() + agent.history.usedBytes();
  await agent.stop();
  // Room for X and its thumbnail, not for X twice; nothing evictable (no handlers: every analysis stays open).
  const agent2 = await startTestAgent({ config: testConfig({ 'storage.maxBytes': base + X.byteLength + 12_000 }, dir) });
  try {
    const first = await upload(agent2, X);
    assert.is(first.statusCode, 202, first.body);
    // Before, the quota made room for X's bytes again and, finding none to evict, refused 507.
    const again = await upload(agent2, X);
    assert.is(again.statusCode, 202, again.body);
    assert.is(again.json().sha256, first.json().sha256);
    assert.is.not(again.json().analysisId, first.json().analysisId, 'a new analysis of the same photo');
    const other = await upload(agent2, photoBytes(MID[1]));
    assert.is(other.statusCode, 507, 'a new photo still needs room');
  } finally {
    await agent2.stop();
  }
});

test('agent: a photo already stored for a finished analysis is not evicted while a new upload of it is being journalled', async () => {
  const X = photoBytes(MID[0]);
  const Y = photoBytes(MID[1]);
  assert.ok(Y.byteLength > X.byteLength, 'Y is the larger photo');
  const dir = await paddedDataDir('tu-quota-pending-');
  // Run 1: X is uploaded and its analysis finishes; its journal entry is cleared.
  const agent = await startTestAgent({ config: testConfig({}, dir) });
  const handlers = await startAllHandlers(agent);
  const first = await upload(agent, X);
  assert.is(first.statusCode, 202);
  const { analysisId: a1, sha256: shaX } = first.json() as { analysisId: string; sha256: string };
  await until(() => agent.orchestrator.status(a1)?.status === 'completed', 5000, 'the first analysis completes');
  await until(() => agent.intake.pending() === 0, 5000, 'its journal entry is cleared');
  const used = agent.blobs.usedBytes() + agent.history.usedBytes();
  for (const h of handlers) await h.close();
  await agent.stop();
  // Run 2 (no handlers: new analyses stay open). Room for Y only if X goes; X may go (finished, delivered).
  const agent2 = await startTestAgent({ config: testConfig({ 'storage.maxBytes': used + Y.byteLength - 1 }, dir) });
  try {
    assert.is(agent2.blobs.usedBytes() + agent2.history.usedBytes(), used, 'the same bytes after the restart');
    // A finished photo is evictable once settled (blobs/quota.ts settleMs, 5 s of wall-clock time, as the state store's updatedAt).
    const row = agent2.store.imagesByAge(0, 10).find((r) => r.analysisId === a1)!;
    assert.ok(row.finished);
    await until(() => Date.now() - row.updatedAt > 5_100, 8_000, 'the first analysis settles');

    // Upload B (X again) is held right after the blob store found X present, before it is journalled.
    const put = agent2.blobs.put.bind(agent2.blobs);
    let atPut!: () => void;
    const reached = new Promise<void>((r) => (atPut = r));
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    agent2.blobs.put = async (bytes, sha) => {
      const res = await put(bytes, sha);
      if (res.sha256 === shaX) {
        atPut();
        await gate;
      }
      return res;
    };
    const b = upload(agent2, X);
    await reached;
    // Upload C (Y) needs room meanwhile: only X could go, and B needs it.
    const c = await upload(agent2, Y);
    assert.is(c.statusCode, 507, `X stays for B, so Y does not fit: ${c.body}`);
    assert.is(c.json().error.code, 'STORAGE_FAILED');
    assert.ok(agent2.intake.pendingImages().includes(shaX), 'an upload being stored counts as needed');
    open();
    const rb = await b;
    assert.is(rb.statusCode, 202, rb.body);
    assert.is(rb.json().sha256, shaX);
    assert.ok(await agent2.blobs.has(shaX), 'the photo of an accepted upload is there');
    assert.ok(agent2.intake.pendingImages().includes(shaX), 'and needed from its journal entry on');
    const quota = (await inject(agent2, { method: 'GET', url: '/api/v1/health' })).json().storage.quota as { evictedBlobs: number };
    assert.is(quota.evictedBlobs, 0);
  } finally {
    await agent2.stop();
  }
});

test.run();
