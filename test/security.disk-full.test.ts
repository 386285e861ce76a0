import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tmpDir } from './support/harness.js';
import { stopProcess } from './support/processes.js';
import { api, fillDisk, mountTmpfs, noisePhoto, startDiskAgent, startHandlers, unmount } from './support/disk.js';

/**
 * Issue 8 finding 5: with the data dir on a 20 MB tmpfs the agent answered 507 three times,
 * then died of an uncaught SQLITE_FULL. Here the agent runs as a child process on a real
 * small filesystem (a crash is an exit), the disk is filled by uploads and then to the last
 * byte while accepted analyses are still running, and space is given back.
 */

async function waitFor(pred: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
const allCompleted = async (url: string, ids: string[]) =>
  (await Promise.all(ids.map(async (id) => (await api(url, 'GET', `/api/v1/analyses/${id}`)).json.status))).every((s) => s === 'completed');

type Err = { error?: { code?: string; message?: string } };
const errorOf = (json: Record<string, unknown>) => (json as Err).error;

test('a full disk: new uploads get 507, reads keep working, health says why, every 202 completes, uploads come back by themselves', async () => {
  const mnt = mountTmpfs(20);
  if (!mnt) return;
  const dataDir = path.join(mnt, 'agent');
  // Space a technician can free later (old exports, logs): without it the uploads leave less than minFreeBytes.
  const ballast = path.join(mnt, 'ballast.bin');
  fs.writeFileSync(ballast, Buffer.alloc(4 * 1024 * 1024, 1));
  // The uplink's relay is unreachable: its outbox keeps writing every event to the same full disk.
  const agent = await startDiskAgent(dataDir, {
    storage: { minFreeBytes: 1024 * 1024, maxBytes: 1024 * 1024 * 1024 },
    uplink: { url: 'mqtt://127.0.0.1:9', password: 'x'.repeat(32) },
  });
  // The steps wait for this gate: accepted analyses are still running when the disk fills up.
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const handlers = await startHandlers(agent.busPort, () => opened);
  const alive = () => agent.child.exitCode === null && agent.child.signalCode === null;
  try {
    // 1. Uploads until the door refuses them: only 202 or 507, never a 500, never a crash.
    const accepted: string[] = [];
    const refused: { status: number; code?: string; message?: string }[] = [];
    for (let i = 0; i < 200 && refused.length < 3; i++) {
      const r = await api(agent.url, 'POST', '/api/v1/images', await noisePhoto(400));
      if (r.status === 202) accepted.push(r.json.analysisId as string);
      else refused.push({ status: r.status, ...errorOf(r.json) });
    }
    assert.ok(accepted.length >= 10, `some uploads fit on 20 MB (${accepted.length})`);
    assert.ok(refused.length === 3, 'the disk filled up');
    for (const r of refused) {
      assert.is(r.status, 507, `refused with 507, not ${r.status} (${r.message})`);
      assert.is(r.code, 'STORAGE_FAILED');
      assert.match(r.message ?? '', /storage is full/);
      assert.match(r.message ?? '', /dataDir/);
    }
    assert.ok(alive(), 'the agent is alive after the refusals');

    // 2. The last byte goes: the running analyses now write their state on a full disk.
    const filler = fillDisk(mnt);
    open();
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok(alive(), `the agent survives writes on a full disk:\n${agent.output().slice(-3000)}`);
    assert.not.match(agent.output(), /uncaught|unhandled/i, 'no uncaught exception');

    // Reads keep working: health (degraded, with the reason), analyses, metrics, the UI.
    const health = await api(agent.url, 'GET', '/api/v1/health');
    assert.is(health.status, 200);
    assert.is(health.json.status, 'degraded');
    const reasons = health.json.reasons as string[];
    assert.ok(reasons.some((x) => /storage full/.test(x)), `health names the full disk: ${JSON.stringify(reasons)}`);
    const storage = health.json.storage as { state: string; freeBytes: number; writeErrors: number };
    assert.is(storage.state, 'full');
    assert.ok(storage.freeBytes < 1024 * 1024, 'free space reported');
    // The real failure, not only the door's free-space check: SQLite got SQLITE_FULL and the state store keeps retrying.
    assert.ok(storage.writeErrors > 0, 'writes failed on the full disk');
    console.log(`  full disk: ${storage.writeErrors} failed writes, state store retrying: ${JSON.stringify((health.json.storage as { retrying: unknown }).retrying)}`);
    for (const id of accepted.slice(0, 5)) assert.is((await api(agent.url, 'GET', `/api/v1/analyses/${id}`)).status, 200, 'an accepted analysis can be read');
    assert.is((await api(agent.url, 'GET', '/api/v1/analyses?limit=500')).status, 200);
    assert.match((await api(agent.url, 'GET', '/metrics')).text, /tu_storage_full 1/);
    assert.is((await api(agent.url, 'GET', '/')).status, 200, 'the technician UI is served');
    const again = await api(agent.url, 'POST', '/api/v1/images', await noisePhoto(50));
    assert.is(again.status, 507, 'still refused while full');

    // 3. Space returns: no restart, uploads are accepted again, and every 202 completes.
    fs.rmSync(filler);
    fs.rmSync(ballast);
    let back: Awaited<ReturnType<typeof api>> | undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const health2 = await api(agent.url, 'GET', '/api/v1/health');
      if ((health2.json.storage as { state: string }).state === 'ok') {
        back = await api(agent.url, 'POST', '/api/v1/images', await noisePhoto(50));
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(back, `the agent noticed the space by itself:\n${agent.output().slice(-4000)}`);
    assert.is(back!.status, 202, `an upload is accepted again: ${back!.text}`);
    accepted.push(back!.json.analysisId as string);
    await waitFor(() => allCompleted(agent.url, accepted), 60_000, 'every accepted analysis to complete');
    const health3 = await api(agent.url, 'GET', '/api/v1/health');
    const retrying = (health3.json.storage as { retrying: { stateStore: unknown; outbox: unknown } }).retrying;
    assert.equal(retrying, { stateStore: null, outbox: null }, 'the state store and the outbox write again');
    assert.not.ok((health3.json.reasons as string[]).some((x) => /storage/.test(x)), 'health no longer names storage');
    assert.ok(alive());
    console.log(`  disk full: ${accepted.length} accepted, ${refused.length} refused with 507, all completed after space returned`);
  } finally {
    for (const h of handlers) await h.close();
    await stopProcess(agent.child);
    unmount(mnt);
  }
});

test('storage quota: the oldest delivered photos are evicted; photos of undelivered events never are', async () => {
  // Uplink off: every event counts as delivered, so the oldest photos make room.
  const dir = tmpDir('tu-quota-');
  const quota = 3 * 1024 * 1024;
  const agent = await startDiskAgent(dir, { storage: { maxBytes: quota, minFreeBytes: 0 } });
  const handlers = await startHandlers(agent.busPort, async () => undefined);
  const blobFiles = () => (fs.existsSync(path.join(dir, 'blobs')) ? (fs.readdirSync(path.join(dir, 'blobs'), { recursive: true }) as string[]).filter((f) => /[0-9a-f]{64}$/.test(f)).map((f) => path.basename(f)) : []);
  try {
    const first: { id: string; sha: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await api(agent.url, 'POST', '/api/v1/images', await noisePhoto(400));
      assert.is(r.status, 202, r.text);
      first.push({ id: r.json.analysisId as string, sha: r.json.sha256 as string });
    }
    await waitFor(() => allCompleted(agent.url, first.map((f) => f.id)), 30_000, 'the first analyses to complete');
    // Finished analyses settle a few seconds before their photos may go (blobs/quota.ts settleMs).
    await new Promise((r) => setTimeout(r, 5500));
    const later: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await api(agent.url, 'POST', '/api/v1/images', await noisePhoto(400));
      assert.is(r.status, 202, `room is made by evicting delivered photos: ${r.text}`);
      later.push(r.json.sha256 as string);
    }
    const present = new Set(blobFiles());
    assert.ok(!present.has(first[0]!.sha), 'the oldest delivered photo was evicted');
    for (const sha of later) assert.ok(present.has(sha), 'the newest photos are kept');
    // Files derived from a photo (its thumbnail: blobs/derived.ts) go with it.
    const derived = (fs.readdirSync(path.join(dir, 'blobs'), { recursive: true }) as string[]).map((f) => path.basename(f)).filter((f) => /^[0-9a-f]{64}\./.test(f));
    assert.not.ok(derived.some((f) => f.startsWith(`${first[0]!.sha}.`)), 'the evicted photo\'s thumbnail went with it');
    for (const sha of later) assert.ok(derived.includes(`${sha}.thumb.jpg`), 'the kept photos keep their thumbnails');
    const health = await api(agent.url, 'GET', '/api/v1/health');
    const q = (health.json.storage as { quota: { usedBytes: number; maxBytes: number; evictedBlobs: number } }).quota;
    assert.ok(q.evictedBlobs >= 1, 'evictions are reported');
    assert.ok(q.usedBytes <= quota, `usage within the quota (${q.usedBytes} <= ${quota})`);
    assert.match((await api(agent.url, 'GET', '/metrics')).text, /tu_storage_evicted_total\{kind="blobs"\} [1-9]/);
    // An evicted photo's analysis is still there to read (its results are in the state; no thumbnail any more).
    assert.is((await api(agent.url, 'GET', `/api/v1/analyses/${first[0]!.id}`)).json.status, 'completed');
  } finally {
    for (const h of handlers) await h.close();
    await stopProcess(agent.child);
  }

  // Uplink on but the relay unreachable: nothing is delivered, so nothing may be evicted.
  const dir2 = tmpDir('tu-quota-undelivered-');
  const agent2 = await startDiskAgent(dir2, { storage: { maxBytes: quota, minFreeBytes: 0 }, uplink: { url: 'mqtt://127.0.0.1:9', password: 'x'.repeat(32) } });
  const handlers2 = await startHandlers(agent2.busPort, async () => undefined);
  try {
    const shas: string[] = [];
    let refusal: Awaited<ReturnType<typeof api>> | undefined;
    for (let i = 0; i < 20 && !refusal; i++) {
      const r = await api(agent2.url, 'POST', '/api/v1/images', await noisePhoto(400));
      if (r.status === 202) {
        shas.push(r.json.sha256 as string);
        // Let it finish and settle: finished but undelivered must still be kept.
        if (i === 3) await new Promise((res) => setTimeout(res, 6000));
      } else refusal = r;
    }
    assert.ok(refusal, 'the quota filled up');
    assert.is(refusal!.status, 507, refusal!.text);
    assert.match(errorOf(refusal!.json)?.message ?? '', /storage\.maxBytes/);
    const present = new Set(fs.readdirSync(path.join(dir2, 'blobs'), { recursive: true }).map((f) => path.basename(String(f))));
    for (const sha of shas) assert.ok(present.has(sha), `a photo of an undelivered event is never evicted (${sha.slice(0, 8)})`);
    const health = await api(agent2.url, 'GET', '/api/v1/health');
    assert.ok((health.json.reasons as string[]).some((x) => /storage quota full/.test(x)), 'health names the quota');
    assert.is((health.json.storage as { quota: { evictedBlobs: number } }).quota.evictedBlobs, 0);
  } finally {
    for (const h of handlers2) await h.close();
    await stopProcess(agent2.child);
  }
});

test.run();
