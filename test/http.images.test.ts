import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Agent } from '@tu/agent';
import type { AnyEvent, BusClient } from '@tu/shared';
import { inject, observer, settle, until } from './support/harness.js';
import { multipart, photoBytes, pngBomb, startRealAgent } from './support/real.js';

type Ctx = { agent: Agent; obs: { bus: BusClient; events: AnyEvent[] } };
const t = suite<Ctx>('http: POST /api/v1/images with the real in-process services');

const JPEG = 'forklift/imagenet_n03384352_forklift.jpg';
const terminal = (events: AnyEvent[], id: string) => events.find((e) => e.subject === id && (e.type === 'analysis.completed' || e.type === 'analysis.failed'));

t.before(async (ctx) => {
  ctx.agent = await startRealAgent({ 'limits.maxUploadBytes': 2 * 1024 * 1024, 'limits.maxPixels': 50_000_000 });
  ctx.obs = await observer(ctx.agent, 'http');
});
t.after(async (ctx) => {
  await ctx.obs.bus.close();
  await ctx.agent.stop();
});

const post = (ctx: Ctx, payload: Buffer | string, headers: Record<string, string>, url = '/api/v1/images') =>
  inject(ctx.agent, { method: 'POST', url, payload, headers });

t('a real JPEG → 202, then analysis.completed with recognition, comparison and metadata', async (ctx) => {
  const res = await post(ctx, photoBytes(JPEG), { 'content-type': 'image/jpeg' });
  assert.is(res.statusCode, 202, res.body);
  const { analysisId } = res.json<{ analysisId: string }>();
  await until(() => terminal(ctx.obs.events, analysisId) !== undefined, 20_000, 'analysis end');
  const end = terminal(ctx.obs.events, analysisId)!;
  assert.is(end.type, 'analysis.completed', JSON.stringify(end.data).slice(0, 500));
  if (end.type !== 'analysis.completed') return;
  assert.is(end.data.results, undefined, 'results travel in the step events, not again in the terminal one');
  const r = ctx.agent.orchestrator.status(analysisId)!.results;
  assert.ok(r.recognition && r.comparison && r.metadata);
  // 1280-d on ONNX Runtime (MobileNet V2, the default), 256-d on tfjs wasm (MobileNet v1 via MODEL_DIR).
  const onnx = r.recognition.model.backend === 'onnxruntime';
  assert.ok(onnx || r.recognition.model.backend === 'wasm', r.recognition.model.backend);
  // The bus carries references (docs/messages.md): the embedding's file and the thumbnail are in the blob store.
  const emb = r.recognition.embedding;
  assert.ok('ref' in emb && emb.ref.sha256 === end.data.image.sha256, JSON.stringify(emb));
  assert.is(emb.dim, onnx ? 1280 : 256);
  assert.is(end.data.image.thumbnail, undefined, 'no thumbnail on the bus');
  assert.ok(r.metadata.quality.width > 0);
  const status = await inject(ctx.agent, { method: 'GET', url: `/api/v1/analyses/${analysisId}` });
  assert.is(status.statusCode, 200);
  const view = status.json<{ status: string; steps: { timeline: unknown[] }[]; image: { thumbnail?: string } }>();
  assert.is(view.status, 'completed');
  assert.ok(view.image.thumbnail && view.image.thumbnail.length <= 12_000, 'the status route puts the thumbnail in');
  assert.is(view.steps.length, 3);
  const list = await inject(ctx.agent, { method: 'GET', url: '/api/v1/analyses?limit=5' });
  assert.ok(list.json<{ analyses: { analysisId: string }[] }>().analyses.some((a) => a.analysisId === analysisId));
});

t('multipart field `image` is accepted; machineId is validated', async (ctx) => {
  const mp = multipart('image', photoBytes(JPEG), 'image/jpeg');
  const ok = await post(ctx, mp.payload, mp.headers, '/api/v1/images?machineId=m-1');
  assert.is(ok.statusCode, 202, ok.body);
  const bad = await post(ctx, photoBytes(JPEG), { 'content-type': 'image/jpeg' }, `/api/v1/images?machineId=${'x'.repeat(200)}`);
  assert.is(bad.statusCode, 400);
  assert.is(bad.json<{ error: { code: string } }>().error.code, 'INVALID_REQUEST');
});

t('every bad input → 4xx JSON error and nothing published; the agent keeps serving', async (ctx) => {
  await settle(300);
  const before = ctx.obs.events.length;
  const jpeg = photoBytes(JPEG);
  const big = Buffer.concat([jpeg, Buffer.alloc(3 * 1024 * 1024)]);
  const bomb = pngBomb(20_000);
  const mpBig = multipart('image', big, 'image/jpeg');
  const mpOther = multipart('other', jpeg, 'image/jpeg');
  const mpCut = multipart('image', jpeg, 'image/jpeg');
  const cases: [string, Buffer | string, Record<string, string>, number, string][] = [
    ['empty body', Buffer.alloc(0), { 'content-type': 'image/jpeg' }, 400, 'IMAGE_EMPTY'],
    ['no content type, no body', '', {}, 400, 'IMAGE_EMPTY'],
    ['text/plain', 'hello', { 'content-type': 'text/plain' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['image/gif declared', Buffer.from('GIF89a....'), { 'content-type': 'image/gif' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['application/json', '{"a":1}', { 'content-type': 'application/json' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['not an image, declared jpeg', Buffer.from('this is not a jpeg at all, just text'), { 'content-type': 'image/jpeg' }, 415, 'NOT_AN_IMAGE'],
    ['over maxUploadBytes', big, { 'content-type': 'image/jpeg' }, 413, 'UPLOAD_TOO_LARGE'],
    ['over maxUploadBytes (multipart)', mpBig.payload, mpBig.headers, 413, 'UPLOAD_TOO_LARGE'],
    ['multipart without image field', mpOther.payload, mpOther.headers, 400, 'INVALID_REQUEST'],
    // busboy's own errors: they were 500 INTERNAL_ERROR.
    ['multipart without a boundary', 'x', { 'content-type': 'multipart/form-data' }, 400, 'INVALID_REQUEST'],
    ['multipart cut before its closing boundary', mpCut.payload.subarray(0, mpCut.payload.length - 10), mpCut.headers, 400, 'INVALID_REQUEST'],
  ];
  for (const [name, payload, headers, status, code] of cases) {
    const res = await post(ctx, payload, headers);
    assert.is(res.statusCode, status, `${name}: ${res.body}`);
    assert.is(res.json<{ error: { code: string } }>().error.code, code, name);
    assert.type(res.json<{ error: { message: string } }>().error.message, 'string');
  }
  // decompression bomb: refused from the header, fast, memory bounded
  const rss0 = process.memoryUsage.rss();
  const t0 = performance.now();
  const res = await post(ctx, bomb, { 'content-type': 'image/png' });
  const ms = performance.now() - t0;
  assert.is(res.statusCode, 413, res.body);
  assert.is(res.json<{ error: { code: string } }>().error.code, 'IMAGE_TOO_MANY_PIXELS');
  assert.ok(ms < 1000, `bomb refused in ${ms.toFixed(0)} ms`);
  assert.ok(process.memoryUsage.rss() - rss0 < 100 * 1024 * 1024, 'no full decode');
  await settle(300);
  assert.is(ctx.obs.events.length, before, `nothing published: ${ctx.obs.events.slice(before).map((e) => e.type).join(',')}`);
  const health = await inject(ctx.agent, { method: 'GET', url: '/api/v1/health' });
  assert.is(health.statusCode, 200);
  const metrics = await inject(ctx.agent, { method: 'GET', url: '/metrics' });
  assert.match(metrics.body, /tu_uploads_rejected_total\{code="IMAGE_TOO_MANY_PIXELS"\} 1/);
  const again = await post(ctx, jpeg, { 'content-type': 'image/jpeg' });
  assert.is(again.statusCode, 202, 'still serving');
});

t('a truncated JPEG passes intake and fails the analysis with IMAGE_DECODE_FAILED from the first step that decodes it', async (ctx) => {
  const jpeg = photoBytes(JPEG);
  const truncated = jpeg.subarray(0, Math.floor(jpeg.length / 3));
  const res = await post(ctx, truncated, { 'content-type': 'image/jpeg' });
  assert.is(res.statusCode, 202, res.body);
  const { analysisId } = res.json<{ analysisId: string }>();
  await until(() => terminal(ctx.obs.events, analysisId) !== undefined, 20_000, 'analysis end');
  const end = terminal(ctx.obs.events, analysisId)!;
  assert.is(end.type, 'analysis.failed');
  if (end.type !== 'analysis.failed') return;
  // recognition and metadata both decode the photo, side by side: whichever fails first fails the analysis.
  assert.ok(end.data.failedStep === 'recognition' || end.data.failedStep === 'metadata', String(end.data.failedStep));
  assert.is(end.data.reason.code, 'IMAGE_DECODE_FAILED');
  assert.is(end.data.reason.retryable, false);
  assert.not.match(end.data.reason.message, ctx.agent.config.dataDir, 'no device path in a reason sent to the cloud');
  assert.match(end.data.reason.message, /sha256:[0-9a-f]{12}/);
  const rf = ctx.obs.events.find((e) => e.subject === analysisId && e.type === `${end.data.failedStep}.failed`);
  assert.ok(rf, `${end.data.failedStep}.failed was published`);
});

t('health: broker, each service with its instances, model and backend; no head → degraded with the reason; 404s are JSON', async (ctx) => {
  const res = await inject(ctx.agent, { method: 'GET', url: '/api/v1/health' });
  const h = res.json<{ status: string; reasons: string[]; broker: { up: boolean }; services: Record<string, { up: boolean; instances: unknown[] }>; model: { state: string; backend: string; head: unknown }; uplink?: unknown }>();
  // This agent runs without a trained head (none in its dataDir, no model.headPath).
  assert.is(h.model.head, null);
  assert.is(h.status, 'degraded');
  assert.is(h.reasons.length, 1, JSON.stringify(h.reasons));
  assert.match(h.reasons[0] ?? '', /no machine-type head.*cannot be recognised.*npm run build:head/);
  assert.ok(h.broker.up);
  for (const s of ['svc-ai-vision-adapter', 'comparison-service', 'metadata-service']) assert.ok(h.services[s]?.up && h.services[s].instances.length === 1, s);
  assert.is(h.model.state, 'loaded');
  assert.ok(['onnxruntime', 'wasm'].includes(h.model.backend), h.model.backend);
  assert.equal(h.uplink, { state: 'disabled', reason: 'uplink.url is not configured' }, 'no uplink.url in this config');
  const nf = await inject(ctx.agent, { method: 'GET', url: '/api/v1/analyses/doesnotexist123' });
  assert.is(nf.statusCode, 404);
  assert.is(nf.json<{ error: { code: string } }>().error.code, 'NOT_FOUND');
  const m = await inject(ctx.agent, { method: 'GET', url: '/metrics' });
  assert.match(m.body, /# TYPE tu_analyses_completed_total counter/);
  assert.match(m.body, /tu_broker_refused_total\{kind="connect"\} \d+/);
});

t('the same label sent twice at once (a double tap, two technicians): one correction, both answered with it', async (ctx) => {
  // With the real vision service the label's embedding is read from the blob store (an await
  // between the check for an existing label and the store): the race needs the real thing.
  const res = await post(ctx, photoBytes(JPEG), { 'content-type': 'image/jpeg' });
  const { analysisId } = res.json<{ analysisId: string }>();
  await until(() => terminal(ctx.obs.events, analysisId) !== undefined, 20_000, 'analysis end');
  const label = (by: string) => inject(ctx.agent, { method: 'POST', url: `/api/v1/analyses/${analysisId}/label`, payload: { label: 'crane', by } });
  const answers = await Promise.all([label('tech-1'), label('tech-2')]);
  assert.equal(answers.map((r) => r.statusCode).sort(), [200, 201]);
  const ids = answers.map((r) => r.json<{ label: { correctionId: string } }>().label.correctionId);
  assert.is(ids[0], ids[1], 'one correction id');
  await settle(300);
  assert.is(ctx.obs.events.filter((e) => e.subject === analysisId && e.type === 'recognition.labelled').length, 1, 'published once');
});

t.run();
