/**
 * A vision worker that dies (a crash in native code, the OOM killer taking the thread) must not
 * take the gateway with it: every caller waiting on it hears of it (recognizer.ts failAll), the
 * vision service starts a new worker (services/run.ts), the technicians' corrections are applied
 * to it again (teach/refitter.ts) and the agent still stops. The real worker thread is
 * terminated from the test, as a crash would end it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listLabelledImages } from '@tu/agent/internal/services/vision/dataset';
import type { VisionError } from '@tu/agent/internal/services/vision/errors';
import { createRecognizer } from '@tu/agent/internal/services/vision/recognizer';
import { embeddingFile } from '@tu/agent/internal/blobs/derived';
import { IMAGES_DIR, MODEL_DIR, photo } from './support/data.js';
import { recognitionDeadlineMs } from '@tu/agent/internal/services/run';
import { inject, testConfig, tmpDir } from './support/harness.js';
import { trainHeadOn } from './support/head.js';
import { startRealAgent } from './support/real.js';
import type { Agent } from '@tu/agent';

type View = { status: string; failure?: { code?: string; reason?: string }; results?: { recognition?: { machineType: string } } };
async function analyseOn(agent: Agent, file: string): Promise<{ id: string; view: View }> {
  const r = await inject(agent, { method: 'POST', url: '/api/v1/images', headers: { 'content-type': 'image/jpeg' }, payload: fs.readFileSync(file) });
  assert.is(r.statusCode, 202, r.body);
  const id = r.json<{ analysisId: string }>().analysisId;
  let view: View = { status: '' };
  for (let i = 0; i < 300 && !['completed', 'failed'].includes(view.status); i++) {
    view = (await inject(agent, { url: `/api/v1/analyses/${id}` })).json();
    if (!['completed', 'failed'].includes(view.status)) await new Promise((r) => setTimeout(r, 100));
  }
  return { id, view };
}
const firstOf = (type: string): string => photo(`${type}/${fs.readdirSync(photo(type)).sort()[0]}`);

// The recognizer's Worker is private to it: note every one it starts (by the caller's stack) to end it from outside.
const visionWorkers: Worker[] = [];
const on = Worker.prototype.on;
Worker.prototype.on = function (this: Worker, ...args: Parameters<typeof on>) {
  if (!visionWorkers.includes(this) && /services[\\/]vision[\\/]recognizer/.test(new Error().stack ?? '')) visionWorkers.push(this);
  return on.apply(this, args);
} as typeof on;

const settled = <T>(p: Promise<T>, ms: number): Promise<{ ok: T } | { err: VisionError } | 'pending'> =>
  Promise.race([p.then((ok) => ({ ok }), (err: VisionError) => ({ err })), new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);

const outcome = (r: Awaited<ReturnType<typeof settled>>): string => (r === 'pending' ? 'no answer in time' : 'err' in r ? `${r.err.code}: ${r.err.message}` : 'answered');

let headPath = '';
test.before(async () => {
  // A small head (2 photos per type): quick to train, and a correction visibly moves it.
  const seen = new Map<string, number>();
  const pick = (await listLabelledImages(IMAGES_DIR)).filter((p) => {
    const n = seen.get(p.label) ?? 0;
    seen.set(p.label, n + 1);
    return n < 2;
  });
  headPath = await trainHeadOn(pick);
});

test('a worker that died rejects teach, stats and recognize with WORKER_FAILED, and dispose returns at once', async () => {
  const rec = await createRecognizer({ modelDir: MODEL_DIR, headPath });
  const worker = visionWorkers.at(-1)!;
  const r0 = await rec.recognize(photo('excavator/' + fs.readdirSync(photo('excavator'))[0]));
  const examples = Array.from({ length: 1500 }, (_, i) => ({ label: i % 2 ? 'excavator' : 'crane', embedding: r0.embedding.map((v) => v + (i % 7) * 1e-3) }));
  const teach = rec.teach(examples);
  const stats = rec.stats();
  await worker.terminate();
  const t = await settled(teach, 3000);
  const s = await settled(stats, 3000);
  assert.ok(t !== 'pending' && 'err' in t, 'teach() settles');
  assert.is((t as { err: VisionError }).err.code, 'WORKER_FAILED');
  assert.ok(s !== 'pending' && 'err' in s, 'stats() settles');
  assert.is((s as { err: VisionError }).err.code, 'WORKER_FAILED');
  const later = await settled(rec.recognize(photo('excavator/' + fs.readdirSync(photo('excavator'))[0])), 3000);
  assert.ok(later !== 'pending' && 'err' in later);
  assert.not.match(later.err.message, /create a new/, 'no developer instructions in a technician-facing reason');
  const t0 = Date.now();
  assert.equal(await settled(rec.dispose(), 3000), { ok: undefined });
  assert.ok(Date.now() - t0 < 500, `dispose() of a dead worker took ${Date.now() - t0} ms`);
});

test('after a worker crash the agent analyses again with the corrected head, and stops promptly', async () => {
  const agent = await startRealAgent({ 'model.headPath': headPath });
  let stopped = false;
  try {
    const analyse = async (file: string) => {
      const r = await inject(agent, { method: 'POST', url: '/api/v1/images', headers: { 'content-type': 'image/jpeg' }, payload: fs.readFileSync(file) });
      assert.is(r.statusCode, 202, r.body);
      const id = r.json<{ analysisId: string }>().analysisId;
      let view: { status: string; failure?: unknown; results?: { recognition?: { machineType: string } } } = { status: '' };
      for (let i = 0; i < 300 && !['completed', 'failed'].includes(view.status); i++) {
        view = (await inject(agent, { url: `/api/v1/analyses/${id}` })).json();
        if (!['completed', 'failed'].includes(view.status)) await new Promise((r) => setTimeout(r, 100));
      }
      assert.is(view.status, 'completed', JSON.stringify(view).slice(0, 600));
      return id;
    };
    const first = await analyse(photo('excavator/' + fs.readdirSync(photo('excavator'))[0]));
    const label = await inject(agent, { method: 'POST', url: `/api/v1/analyses/${first}/label`, payload: { label: 'telehandler', by: 'tech-1' } });
    assert.is(label.statusCode, 201, label.body);
    await agent.refitter.idle();
    const refitted = agent.recognizer()!.info().model.head!.id;
    assert.match(refitted, '+device-');

    const crashed = agent.recognizer();
    await visionWorkers.at(-1)!.terminate();
    await analyse(photo('crane/' + fs.readdirSync(photo('crane'))[0]));
    assert.is.not(agent.recognizer(), crashed, 'a new recognizer serves');
    await agent.refitter.idle();
    assert.match(agent.recognizer()!.info().model.head!.id, '+device-', 'the corrections are applied to the new worker');
    const health = (await inject(agent, { url: '/api/v1/health' })).json<{ model: { head: { id: string }; refit: { used: number } | null } }>();
    assert.match(health.model.head.id, '+device-');
    assert.is(health.model.refit?.used, 1);

    const t0 = Date.now();
    const end = await settled(agent.stop(), 5000);
    stopped = end !== 'pending';
    assert.ok(stopped, 'agent.stop() ends after a worker crash');
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    if (!stopped) void agent.stop();
  }
});

test('a worker that cannot be restarted (model gone): photos fail with MODEL_NOT_FOUND at once, health says why, restarts back off, and vision returns with the model', async () => {
  const modelDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tu-model-')), path.basename(MODEL_DIR));
  fs.cpSync(MODEL_DIR, modelDir, { recursive: true });
  const agent = await startRealAgent({ 'model.dir': modelDir, 'model.headPath': headPath });
  try {
    assert.is((await analyseOn(agent, firstOf('excavator'))).view.status, 'completed');
    const onnx = path.join(modelDir, 'model.onnx');
    fs.renameSync(onnx, `${onnx}.away`);
    const started = visionWorkers.length;
    await visionWorkers.at(-1)!.terminate();
    for (const type of ['crane', 'forklift', 'tractor']) {
      const { view } = await analyseOn(agent, firstOf(type));
      assert.is(view.status, 'failed', JSON.stringify(view).slice(0, 400));
      const failure = JSON.stringify(view.failure ?? view);
      assert.match(failure, 'MODEL_NOT_FOUND', failure.slice(0, 600));
      assert.not.match(failure, 'RETRIES_EXHAUSTED');
      assert.not.match(failure, /create a new/);
    }
    // Three photos, one restart (the next waits for its backoff, a second at least).
    assert.is(visionWorkers.length - started, 1, 'one restart for three photos');
    const health = (await inject(agent, { url: '/api/v1/health' })).json<{ status: string; reasons: string[]; model: { state: string; error?: { code: string } } }>();
    assert.is(health.status, 'degraded');
    assert.ok(health.reasons.some((r) => r.includes('MODEL_NOT_FOUND') && r.includes('model.dir')), health.reasons.join(' | '));
    assert.is(health.model.error?.code, 'MODEL_NOT_FOUND');

    fs.renameSync(`${onnx}.away`, onnx);
    const end = Date.now() + 15_000;
    while (agent.recognizer() === undefined && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    assert.ok(agent.recognizer(), 'the restart is retried until the model is back');
    assert.is((await analyseOn(agent, firstOf('crane'))).view.status, 'completed');
    const after = (await inject(agent, { url: '/api/v1/health' })).json<{ reasons: string[] }>();
    assert.not.ok(after.reasons.some((r) => r.includes('MODEL_NOT_FOUND')));
  } finally {
    await agent.stop();
  }
});

test('a worker that leaves recognitions unanswered past the deadline is terminated; every waiter fails WORKER_FAILED saying it hung', async () => {
  // A real photo the worker needs far longer than the deadline for (a 36 MP PNG: no shrink-on-load), as a hang would be.
  const slow = await sharp({ create: { width: 6000, height: 6000, channels: 3, background: { r: 90, g: 120, b: 60 } } }).png({ compressionLevel: 0 }).toBuffer();
  const rec = await createRecognizer({ modelDir: MODEL_DIR, headPath, deadlineMs: 40 });
  const worker = visionWorkers.at(-1)!;
  const exited = new Promise<void>((r) => worker.once('exit', () => r()));
  const stuck = settled(rec.recognize(slow), 5000);
  const queued = settled(rec.recognize(firstOf('crane')), 5000);
  for (const r of [await stuck, await queued]) {
    assert.ok(r !== 'pending' && 'err' in r, 'the waiter fails');
    assert.is(r.err.code, 'WORKER_FAILED');
    assert.match(r.err.message, /hung/);
    assert.match(r.err.message, /restarted/);
  }
  assert.is(await Promise.race([exited.then(() => 'exited'), new Promise((r) => setTimeout(() => r('running'), 3000))]), 'exited', 'the hung worker is terminated');
  assert.equal(await settled(rec.dispose(), 1000), { ok: undefined });
});

test('the deadline runs from the last answer: photos queued behind others are not taken for a hang', async () => {
  const rec = await createRecognizer({ modelDir: MODEL_DIR, headPath, deadlineMs: 3000 });
  try {
    const files = ['crane', 'forklift', 'tractor', 'excavator', 'wheel_loader', 'crane', 'forklift', 'tractor'].map(firstOf);
    const results = await Promise.all(files.map((f) => rec.recognize(f)));
    assert.is(results.length, files.length);
  } finally {
    await rec.dispose();
  }
  // The agent's rule (services/run.ts): below the recognition step's timeout, so the worker is restarted before the attempt times out.
  const config = testConfig({ 'orchestrator.plan': { recognition: { timeoutMs: 3000 } } });
  const deadline = recognitionDeadlineMs(config)!;
  assert.ok(deadline > 0 && deadline < 3000, `deadline ${deadline} ms`);
});

test('a refit longer than the hang deadline runs beside the photos: they are recognised meanwhile and the worker is not taken for hung', async () => {
  const deadlineMs = 300;
  const rec = await createRecognizer({ modelDir: MODEL_DIR, headPath, deadlineMs });
  try {
    const file = firstOf('excavator');
    const r0 = await rec.recognize(file);
    // 1,500 examples: an n×n kernel and its Cholesky factor, seconds of work (services/vision/refit.ts).
    const examples = Array.from({ length: 1500 }, (_, i) => ({ label: i % 2 ? 'excavator' : 'crane', embedding: r0.embedding.map((v) => v + (i % 7) * 1e-3) }));
    const t0 = performance.now();
    let taughtAfter = 0;
    const teach = settled(
      rec.teach(examples).then((s) => ((taughtAfter = performance.now() - t0), s)),
      60_000,
    );
    // Photos one after another while the refit runs. Before, the refit ran in the worker's queue
    // of photos: this photo waited behind it, the deadline passed, and the worker was terminated
    // with the refit and the photo (both WORKER_FAILED).
    let during = 0;
    for (let i = 0; i < 5000 && taughtAfter === 0; i++) {
      const r = await settled(rec.recognize(file), 10_000);
      assert.ok(r !== 'pending' && 'ok' in r, `photo ${i} during the refit: ${outcome(r)}`);
      if (taughtAfter === 0) during++;
    }
    const t = await teach;
    assert.ok(t !== 'pending' && 'ok' in t, `the refit: ${outcome(t)}`);
    assert.is(t.ok.used, 1500);
    assert.ok(taughtAfter > 3 * deadlineMs, `the refit took ${taughtAfter.toFixed(0)} ms, not longer than the deadline: the test shows nothing`);
    assert.ok(during > 0, 'photos were recognised while the refit ran');
    assert.match(rec.info().model.head?.id ?? '', '+device-', 'the refitted head is in use afterwards');
    console.log(`  refit of 1,500 examples took ${taughtAfter.toFixed(0)} ms (hang deadline ${deadlineMs} ms); ${during} photos recognised meanwhile`);
  } finally {
    await rec.dispose();
  }
});

const modelCopy = (): string => {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tu-model-')), path.basename(MODEL_DIR));
  fs.cpSync(MODEL_DIR, dir, { recursive: true });
  return dir;
};

test('a damaged refit head in dataDir is set aside: the gateway starts on the shipped head, health names HEAD_INVALID and the file', async () => {
  const modelDir = modelCopy();
  fs.copyFileSync(headPath, path.join(modelDir, 'head.json'));
  const dataDir = tmpDir('tu-real-');
  const damaged = path.join(dataDir, 'head.json');
  fs.writeFileSync(damaged, fs.readFileSync(headPath, 'utf8').slice(0, 5000));
  const agent = await startRealAgent({ 'model.dir': modelDir }, dataDir);
  try {
    const shipped = (JSON.parse(fs.readFileSync(headPath, 'utf8')) as { id: string }).id;
    assert.is(agent.recognizer()?.info().model.head?.id, shipped, 'the shipped head serves');
    assert.not.ok(fs.existsSync(damaged), 'the damaged head is no longer tried');
    const kept = fs.readdirSync(dataDir).filter((f) => f.startsWith('head.json.bad-'));
    assert.is(kept.length, 1, 'kept for inspection');
    const health = (await inject(agent, { url: '/api/v1/health' })).json<{ status: string; reasons: string[] }>();
    assert.is(health.status, 'degraded');
    assert.ok(health.reasons.some((r) => r.includes('HEAD_INVALID') && r.includes(damaged) && r.includes(kept[0]!)), health.reasons.join(' | '));
    assert.is((await analyseOn(agent, firstOf('crane'))).view.status, 'completed');
  } finally {
    await agent.stop();
  }
});

test('a refit head trained for another model (before a model update) is passed over, left in place: the shipped head serves and health says why', async () => {
  const modelDir = modelCopy();
  fs.copyFileSync(headPath, path.join(modelDir, 'head.json'));
  const dataDir = tmpDir('tu-real-');
  const other = path.join(dataDir, 'head.json');
  const head = JSON.parse(fs.readFileSync(headPath, 'utf8')) as { id: string; source: { backbone: { version: string } } };
  const shipped = head.id;
  head.id = 'head-of-the-old-model';
  head.source.backbone.version = 'sha256-0123456789ab';
  fs.writeFileSync(other, JSON.stringify(head));
  const agent = await startRealAgent({ 'model.dir': modelDir }, dataDir);
  try {
    assert.is(agent.recognizer()?.info().model.head?.id, shipped, 'the shipped head serves');
    assert.ok(fs.existsSync(other), 'the other model\'s head is left where it is (it fits that model again after a rollback)');
    const health = (await inject(agent, { url: '/api/v1/health' })).json<{ status: string; reasons: string[] }>();
    assert.is(health.status, 'degraded');
    const said = health.reasons.filter((r) => r.includes('HEAD_MISMATCH'));
    assert.is(said.length, 1, health.reasons.join(' | '));
    assert.ok(said[0]!.includes(other) && said[0]!.includes('passed over') && !said[0]!.includes('damaged'), said[0]);
    assert.is((await analyseOn(agent, firstOf('crane'))).view.status, 'completed');
  } finally {
    await agent.stop();
  }
});

test('a missing model keeps vision off, not the gateway: uploads are taken, recognition answers MODEL_NOT_FOUND, health says why', async () => {
  const modelDir = modelCopy();
  fs.rmSync(path.join(modelDir, 'model.onnx'));
  const agent = await startRealAgent({ 'model.dir': modelDir, 'model.headPath': headPath });
  try {
    const health = (await inject(agent, { url: '/api/v1/health' })).json<{ status: string; reasons: string[]; model: { state: string; error?: { code: string } } }>();
    assert.is(health.status, 'degraded');
    assert.is(health.model.error?.code, 'MODEL_NOT_FOUND');
    assert.ok(health.reasons.some((r) => r.includes('MODEL_NOT_FOUND')), health.reasons.join(' | '));
    const { view } = await analyseOn(agent, firstOf('crane'));
    assert.is(view.status, 'failed');
    assert.match(JSON.stringify(view.failure ?? view), 'MODEL_NOT_FOUND');
  } finally {
    await agent.stop();
  }
});

test('an embedding that cannot be stored fails the step as STORAGE_FAILED with its advice, not as an internal error', async () => {
  const agent = await startRealAgent({ 'model.headPath': headPath });
  try {
    const file = firstOf('crane');
    const sha = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    const model = path.basename(MODEL_DIR); // the model's id is its directory's name
    // A directory where the embedding file goes: its durable write cannot rename into place.
    fs.mkdirSync(`${agent.blobs.pathOf(sha)}.${embeddingFile(model)}`, { recursive: true });
    const { view } = await analyseOn(agent, file);
    assert.is(view.status, 'failed');
    const failure = JSON.stringify(view.failure ?? view);
    assert.match(failure, 'STORAGE_FAILED');
    assert.match(failure, 'free space in dataDir');
  } finally {
    await agent.stop();
  }
});

test.run();
