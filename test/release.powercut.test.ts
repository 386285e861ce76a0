/**
 * Power cuts on the release artifact (issue: release): the agent from the unpacked tarball
 * is killed with kill -9 during uploads of real photos and restarted, ten times. Every
 * upload answered 202 ends exactly once, and every data file opens cleanly afterwards.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { listLabelledImages } from '@tu/agent/internal/services/vision/dataset';
import { IMAGES_DIR } from './support/data.js';
import { freePort } from './support/processes.js';
import { artifact, envI, freshHome, startDetached, stopChild, unpack, waitHealth } from './support/release.js';
import { bearerFor } from './support/harness.js';

const KILLS = 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

test(`kill -9 during uploads, ${KILLS} times: every 202 ends exactly once and every data file opens cleanly`, async () => {
  const app = unpack(artifact('0.1.0-powercut'));
  const data = path.join(freshHome(), 'data');
  const [http, bus] = [await freePort(), await freePort()];
  const start = () => startDetached(envI({ TU_GATEWAY_ID: 'gw-powercut', TU_DATA_DIR: data, TU_HTTP_PORT: String(http), TU_MQTT_PORT: String(bus), TU_LOG_LEVEL: 'warn' }, [path.join(app, 'bin/tu-agent'), 'run']));
  const auth = await bearerFor('gw-powercut', data);
  const photos = (await listLabelledImages(IMAGES_DIR)).slice(0, 24).map((p) => fs.readFileSync(p.file));
  const accepted = new Set<string>();
  let refused = 0;
  let n = 0;
  const upload = async () => {
    try {
      const res = await fetch(`http://127.0.0.1:${http}/api/v1/images`, { method: 'POST', headers: { 'content-type': 'image/jpeg', ...auth }, body: photos[n++ % photos.length]! });
      if (res.status === 202) accepted.add(((await res.json()) as { analysisId: string }).analysisId);
      else refused++;
    } catch {
      // the connection died with the process: no 202, no promise made
    }
  };

  for (let cycle = 0; cycle < KILLS; cycle++) {
    const agent = start();
    await waitHealth(http, 60_000, agent);
    const killAt = Date.now() + 400 + Math.random() * 1600;
    // Two technicians uploading steadily (a burst beyond orchestrator.maxQueue is another matter: QUEUE_FULL).
    const uploaders = [0, 1].map(async () => {
      while (Date.now() < killAt + 200) {
        await upload();
        await sleep(150);
      }
    });
    await sleep(killAt - Date.now());
    agent.kill('SIGKILL');
    await new Promise((r) => agent.once('exit', r));
    await Promise.all(uploaders);
  }
  const agent = start();
  await waitHealth(http, 60_000, agent);
  const statusOf = async (id: string) => ((await (await fetch(`http://127.0.0.1:${http}/api/v1/analyses/${id}`, { headers: auth })).json()) as { status: string }).status;
  const deadline = Date.now() + 180_000;
  for (const id of accepted) {
    while (!['completed', 'failed'].includes(await statusOf(id))) {
      if (Date.now() > deadline) throw new Error(`analysis ${id} (answered 202) did not end within 180 s`);
      await sleep(100);
    }
  }
  assert.is(await stopChild(agent), 0, 'clean stop');

  // Exactly once: one row per 202, closed, with one persisted terminal event.
  const db = new Database(path.join(data, 'orchestrator.sqlite'), { readonly: true });
  const rows = db.prepare('SELECT id, status, open, state FROM analyses').all() as { id: string; status: string; open: number; state: string }[];
  db.close();
  const byId = new Map(rows.map((r) => [r.id, r]));
  let completed = 0;
  for (const id of accepted) {
    const r = byId.get(id);
    assert.ok(r, `${id} (answered 202) has its analysis`);
    assert.is(r!.open, 0, `${id} closed`);
    const st = JSON.parse(r!.state) as { terminal?: { event: { id: string; type: string } } };
    assert.ok(st.terminal, `${id} has its one terminal event`);
    if (r!.status === 'completed') completed++;
  }
  // Every data file opens cleanly.
  const files = walk(data);
  let sqlite = 0;
  let blobs = 0;
  for (const f of files) {
    if (f.endsWith('.sqlite')) {
      const d = new Database(f, { readonly: true });
      assert.is((d.prepare('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check, 'ok', `${f} integrity`);
      d.close();
      sqlite++;
    } else if (f.includes(`${path.sep}blobs${path.sep}`) && !path.basename(f).startsWith('.')) {
      const name = path.basename(f);
      const derived = /^([0-9a-f]{64})\.(.+)$/.exec(name);
      if (!derived) {
        assert.is(createHash('sha256').update(fs.readFileSync(f)).digest('hex'), name, `${f} holds the bytes its name promises`);
        blobs++;
        continue;
      }
      // Files derived from a photo (agent/src/blobs/derived.ts) sit beside it and are whole: written atomically.
      assert.ok(fs.existsSync(path.join(path.dirname(f), derived[1]!)), `${f} sits beside its photo`);
      const bytes = fs.readFileSync(f);
      if (derived[2]!.endsWith('.f32')) assert.ok(bytes.length > 0 && bytes.length % 4 === 0, `${f} holds whole float32 values (${bytes.length} bytes)`);
      else if (derived[2] === 'thumb.jpg') assert.ok(bytes.subarray(0, 2).equals(Buffer.from([0xff, 0xd8])), `${f} is a JPEG`);
      else assert.unreachable(`${f}: an unknown file in the blob store`);
    } else if (f.endsWith('.json')) {
      JSON.parse(fs.readFileSync(f, 'utf8'));
    }
  }
  console.log(`  release power cut: ${KILLS} kill -9, ${accepted.size} uploads answered 202 (${refused} refused), ${completed} completed, ${accepted.size - completed} failed; ${sqlite} SQLite files and ${blobs} blobs intact`);
  assert.ok(accepted.size >= KILLS, 'uploads were accepted in the kill windows');
  assert.ok(completed >= accepted.size * 0.9, 'most analyses complete despite the power cuts');
});

test.run();
