import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Agent } from '@tu/agent';
import { slimEvent } from '@tu/agent/internal/http/event-feed';
import { EXAMPLES_FILE, listExamples } from '@tu/agent/internal/teach/examples';
import { systemClock, type BusClient, type Clock } from '@tu/shared';
import { recognitionResult } from './support/fixtures.js';
import { bearerFor, inject, observer, ofType, startAllHandlers, startHandler, startTestAgent, testConfig, tmpDir, until } from './support/harness.js';
import { photoBytes } from './support/real.js';
import { api, fillDisk, mountTmpfs, noisePhoto, startDiskAgent, startHandlers, unmount } from './support/disk.js';
import { stopProcess } from './support/processes.js';

type Ctx = { agent: Agent; handlers: BusClient[]; dataDir: string; hold: { on: boolean; release: (() => void)[] } };
type LabelAnswer = { created: boolean; label: { correctionId: string; analysisId: string; label: string; previousLabel: string; kind: string; by: string; at: string; sha256: string; embeddingLength: number } };

const t = suite<Ctx>('http: technicians label analyses (POST /api/v1/analyses/:id/label, GET /api/v1/labels)');
t.before(async (ctx) => {
  ctx.dataDir = tmpDir('tu-labels-');
  ctx.agent = await startTestAgent({ config: testConfig({}, ctx.dataDir) });
  ctx.hold = { on: false, release: [] };
  const hold = ctx.hold;
  ctx.handlers = [
    // While `hold.on`, recognition does not answer: the analysis has no recognition result yet.
    await startHandler(ctx.agent, 'recognition', async () => {
      if (hold.on) await new Promise<void>((r) => hold.release.push(r));
      return recognitionResult();
    }),
    await startHandler(ctx.agent, 'comparison'),
    await startHandler(ctx.agent, 'metadata'),
  ];
});
t.after(async (ctx) => {
  for (const r of ctx.hold.release.splice(0)) r();
  for (const h of ctx.handlers) await h.close();
  await ctx.agent.stop();
});

async function upload(agent: Agent, wait = true): Promise<string> {
  const res = await inject(agent, { method: 'POST', url: '/api/v1/images', payload: photoBytes('forklift/imagenet_n03384352_forklift.jpg'), headers: { 'content-type': 'image/jpeg' } });
  assert.is(res.statusCode, 202, res.body);
  const { analysisId } = res.json<{ analysisId: string }>();
  if (wait) await until(() => agent.orchestrator.status(analysisId)?.status === 'completed', 10_000, 'analysis completed');
  return analysisId;
}
const label = (agent: Agent, id: string, body: unknown) => inject(agent, { method: 'POST', url: `/api/v1/analyses/${id}/label`, payload: body as object });

t('confirm: 201, stored with photo hash and embedding, published once as recognition.labelled (event id = correction id)', async (ctx) => {
  const obs = await observer(ctx.agent, 'labels');
  const id = await upload(ctx.agent);
  const res = await label(ctx.agent, id, { label: 'excavator', by: '  Anna (tech 17) ' });
  assert.is(res.statusCode, 201, res.body);
  const a = res.json<LabelAnswer>();
  assert.is(a.created, true);
  assert.is(a.label.kind, 'confirmation');
  assert.is(a.label.previousLabel, 'excavator');
  assert.is(a.label.by, 'Anna (tech 17)', 'trimmed');
  assert.is(a.label.sha256, ctx.agent.orchestrator.status(id)!.image.sha256);
  assert.is(a.label.embeddingLength, 256);
  await obs.waitFor((e) => ofType(e, 'recognition.labelled', id).length === 1);
  const ev = ofType(obs.events, 'recognition.labelled', id)[0]!;
  assert.is(ev.id, a.label.correctionId);
  assert.ok(ev.source.endsWith('/intake'), ev.source);
  const data = ev.data as { embedding: unknown; label: string; model: { id: string } };
  assert.equal(data.embedding, recognitionResult().embedding, 'the event carries the result\'s embedding as it came (these fake results carry it packed)');
  assert.is(data.model.id, 'mobilenet_v1_025_224');
  assert.not.ok('embedding' in (slimEvent(ev).data as object), 'the UI feed leaves the embedding out');

  // Same label again (another technician, even): a no-op returning the same correction, no new event.
  const again = await label(ctx.agent, id, { label: 'excavator', by: 'Ben' });
  assert.is(again.statusCode, 200, again.body);
  assert.is(again.json<LabelAnswer>().label.correctionId, a.label.correctionId);
  assert.is(again.json<LabelAnswer>().created, false);

  // A different label replaces it: new correction id, kind correction, the latest wins.
  const fix = await label(ctx.agent, id, { label: 'negative', by: 'Ben' });
  assert.is(fix.statusCode, 201, fix.body);
  const f = fix.json<LabelAnswer>();
  assert.is.not(f.label.correctionId, a.label.correctionId);
  assert.is(f.label.kind, 'correction');
  assert.is(f.label.previousLabel, 'excavator');
  await obs.waitFor((e) => ofType(e, 'recognition.labelled', id).length === 2);
  await new Promise((r) => setTimeout(r, 50));
  assert.is(ofType(obs.events, 'recognition.labelled', id).length, 2, 'the no-op published nothing');
  await obs.bus.close();

  const current = await inject(ctx.agent, { method: 'GET', url: `/api/v1/analyses/${id}/label` });
  assert.is(current.json<{ label: { correctionId: string } }>().label.correctionId, f.label.correctionId);
  const list = await inject(ctx.agent, { method: 'GET', url: '/api/v1/labels' });
  const labels = list.json<{ labels: { analysisId: string; label: string; embedding?: unknown }[] }>().labels;
  assert.equal(labels.filter((l) => l.analysisId === id).map((l) => l.label), ['negative']);
  assert.not.ok('embedding' in labels[0]!, 'the list leaves embeddings out');

  // The refit reads every example straight from the data directory.
  const examples = listExamples(ctx.dataDir).filter((x) => x.analysisId === id);
  assert.is(examples.length, 1);
  assert.is(examples[0]!.label, 'negative');
  assert.is(examples[0]!.embedding.length, 256);
  assert.is(examples[0]!.correctionId, f.label.correctionId);
});

t('GET /api/v1/labels lists newest first', async (ctx) => {
  const first = await upload(ctx.agent);
  const second = await upload(ctx.agent);
  assert.is((await label(ctx.agent, first, { label: 'crane', by: 'Cem' })).statusCode, 201);
  await new Promise((r) => setTimeout(r, 5));
  assert.is((await label(ctx.agent, second, { label: 'excavator', by: 'Cem' })).statusCode, 201);
  const labels = (await inject(ctx.agent, { method: 'GET', url: '/api/v1/labels?limit=2' })).json<{ labels: { analysisId: string }[] }>().labels;
  assert.equal(labels.map((l) => l.analysisId), [second, first]);
  const bad = await inject(ctx.agent, { method: 'GET', url: '/api/v1/labels?limit=0' });
  assert.is(bad.statusCode, 400);
});

t('refusals: invalid label or body 400 (saying what is allowed), unknown analysis 404, no recognition yet 409', async (ctx) => {
  const id = await upload(ctx.agent);
  const wrong = await label(ctx.agent, id, { label: 'spaceship', by: 'Anna' });
  assert.is(wrong.statusCode, 400);
  assert.is(wrong.json<{ error: { code: string } }>().error.code, 'INVALID_REQUEST');
  assert.match(wrong.json<{ error: { message: string } }>().error.message, /^body label: label must be one of excavator, wheel_loader, .*negative \(got 'spaceship'\)$/);
  for (const body of [{ label: 'crane' }, { label: 'crane', by: '   ' }, { label: 'crane', by: 'A', extra: 1 }, {}]) {
    const r = await label(ctx.agent, id, body);
    assert.is(r.statusCode, 400, JSON.stringify(body));
  }
  const notJson = await inject(ctx.agent, { method: 'POST', url: `/api/v1/analyses/${id}/label`, payload: '{', headers: { 'content-type': 'application/json' } });
  assert.is(notJson.statusCode, 400);
  const unknown = await label(ctx.agent, 'no-such-analysis-1', { label: 'crane', by: 'Anna' });
  assert.is(unknown.statusCode, 404);
  assert.is(unknown.json<{ error: { code: string } }>().error.code, 'NOT_FOUND');
  // Reading its label says the same, not null as for a photo nobody labelled yet.
  const unknownRead = await inject(ctx.agent, { method: 'GET', url: '/api/v1/analyses/no-such-analysis-1/label' });
  assert.is(unknownRead.statusCode, 404, unknownRead.body);
  assert.match(unknownRead.json<{ error: { message: string } }>().error.message, /No analysis no-such-analysis-1 on this gateway/);
  assert.equal((await inject(ctx.agent, { method: 'GET', url: `/api/v1/analyses/${id}/label` })).json(), { label: null }, 'a known, unlabelled analysis: null');
  assert.is((await label(ctx.agent, 'x', { label: 'crane', by: 'Anna' })).statusCode, 400);

  ctx.hold.on = true;
  const pending = await upload(ctx.agent, false);
  await until(() => ctx.hold.release.length > 0, 5000, 'recognition to be held');
  const early = await label(ctx.agent, pending, { label: 'crane', by: 'Anna' });
  assert.is(early.statusCode, 409, early.body);
  assert.is(early.json<{ error: { code: string } }>().error.code, 'NOT_RECOGNISED');
  ctx.hold.on = false;
  for (const r of ctx.hold.release.splice(0)) r();
  assert.is(ctx.agent.teacher.current(pending), undefined, 'nothing stored');
});

t('a label whose publish failed goes out with the next label (same event id)', async (ctx) => {
  const obs = await observer(ctx.agent, 'retry');
  const [first, second] = [await upload(ctx.agent), await upload(ctx.agent)];
  const a = (await label(ctx.agent, first, { label: 'grader', by: 'Eve' })).json<LabelAnswer>();
  await obs.waitFor((e) => ofType(e, 'recognition.labelled', first).length === 1);
  // As if that publish had failed: the row is still marked unpublished.
  const db = new Database(path.join(ctx.dataDir, EXAMPLES_FILE));
  db.prepare('UPDATE examples SET published = 0 WHERE correction_id = ?').run(a.label.correctionId);
  db.close();
  assert.is((await label(ctx.agent, second, { label: 'roller', by: 'Eve' })).statusCode, 201);
  await obs.waitFor((e) => ofType(e, 'recognition.labelled', first).length === 2 && ofType(e, 'recognition.labelled', second).length === 1);
  assert.equal(ofType(obs.events, 'recognition.labelled', first).map((e) => e.id), [a.label.correctionId, a.label.correctionId]);
  await obs.bus.close();
});

t('a label stored but not yet published goes out when the agent starts again (same event id)', async (ctx) => {
  const id = await upload(ctx.agent);
  const a = (await label(ctx.agent, id, { label: 'tractor', by: 'Dana' })).json<LabelAnswer>();
  for (const h of ctx.handlers.splice(0)) await h.close();
  await ctx.agent.stop();
  // As after a crash between the commit and the publish.
  const file = path.join(ctx.dataDir, EXAMPLES_FILE);
  const db = new Database(file);
  db.prepare('UPDATE examples SET published = 0 WHERE correction_id = ?').run(a.label.correctionId);
  db.close();
  ctx.agent = await startTestAgent({ config: testConfig({}, ctx.dataDir) });
  const check = new Database(file, { readonly: true });
  const row = check.prepare('SELECT published FROM examples WHERE correction_id = ?').get(a.label.correctionId) as { published: number };
  check.close();
  assert.is(row.published, 1);
  assert.is(ctx.agent.teacher.current(id)?.correctionId, a.label.correctionId, 'kept across the restart');
});

t('a relabel after the gateway clock stepped back is stamped after the label it replaces (the relay keeps the newest)', async () => {
  // The wall clock as NTP sets it: an hour back after the first label.
  let skew = 0;
  const clock: Clock = { ...systemClock, now: () => systemClock.now() + skew };
  const agent = await startTestAgent({ config: testConfig({}), clock });
  const handlers = await startAllHandlers(agent);
  try {
    const id = await upload(agent);
    const first = (await label(agent, id, { label: 'crane', by: 'Anna' })).json<LabelAnswer>().label;
    skew = -3_600_000;
    const fix = await label(agent, id, { label: 'roller', by: 'Anna' });
    assert.is(fix.statusCode, 201, fix.body);
    const second = fix.json<LabelAnswer>().label;
    assert.ok(second.at > first.at, `relabel at ${second.at} is after the label it replaces (${first.at})`);
    // Not pushed further than needed: one millisecond after it.
    assert.is(Date.parse(second.at) - Date.parse(first.at), 1);
  } finally {
    for (const h of handlers) await h.close();
    await agent.stop();
  }
});

t('a full disk when storing a label: 507 STORAGE_FAILED saying what to do, health names the full disk, nothing half-stored; the label is taken once space returns', async () => {
  const mnt = mountTmpfs(20);
  if (!mnt) return;
  const dataDir = path.join(mnt, 'agent');
  const agent = await startDiskAgent(dataDir, { storage: { minFreeBytes: 0, maxBytes: 1024 * 1024 * 1024 } });
  const handlers = await startHandlers(agent.busPort, async () => {});
  const auth = await bearerFor('gw-disk', dataDir);
  const give = async (id: string, l: string) => {
    const r = await fetch(`${agent.url}/api/v1/analyses/${id}/label`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ label: l, by: 'Anna' }) });
    return { status: r.status, json: (await r.json()) as { error?: { code: string; message: string }; label?: { label: string } } };
  };
  try {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await api(agent.url, 'POST', '/api/v1/images', await noisePhoto(50))).json.analysisId as string);
    const done = async () => (await Promise.all(ids.map(async (id) => (await api(agent.url, 'GET', `/api/v1/analyses/${id}`)).json.status))).every((x) => x === 'completed');
    for (let k = 0; !(await done()); k++) {
      if (k > 200) throw new Error('analyses did not complete');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.is((await give(ids[0]!, 'crane')).status, 201);
    const filler = fillDisk(mnt);
    const full = await give(ids[1]!, 'roller');
    assert.is(full.status, 507, JSON.stringify(full.json));
    assert.is(full.json.error?.code, 'STORAGE_FAILED');
    assert.match(full.json.error?.message ?? '', /Free space in the data directory \(dataDir\), then give the label again/);
    const relabel = await give(ids[0]!, 'grader');
    assert.is(relabel.status, 507);
    const health = await api(agent.url, 'GET', '/api/v1/health');
    assert.ok((health.json.reasons as string[]).some((x) => /storage full/.test(x)), `health names the full disk: ${JSON.stringify(health.json.reasons)}`);
    assert.is((await api(agent.url, 'GET', `/api/v1/analyses/${ids[1]}/label`)).json.label, null, 'nothing half-stored');
    assert.is(((await api(agent.url, 'GET', `/api/v1/analyses/${ids[0]}/label`)).json.label as { label: string }).label, 'crane', 'the earlier label stays');
    fs.rmSync(filler);
    const back = await give(ids[1]!, 'roller');
    assert.is(back.status, 201, JSON.stringify(back.json));
    assert.is(agent.child.exitCode, null, 'the agent is alive');
  } finally {
    for (const h of handlers) await h.close();
    await stopProcess(agent.child);
    unmount(mnt);
  }
});

t.run();
