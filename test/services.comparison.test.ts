import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Agent } from '@tu/agent';
import type { AnyEvent, BusClient, ComparisonResult } from '@tu/shared';
import { inject, observer, until } from './support/harness.js';
import { photoBytes, startRealAgent } from './support/real.js';

type Ctx = { agent: Agent; obs: { bus: BusClient; events: AnyEvent[] } };
const t = suite<Ctx>('comparison-service: registered machine, references, history, duplicates (real model)');

// The same Kobelco excavator photographed three times (MODELS.md: same physical machine in several photos).
const KOBELCO = ['excavator/surya_img05.jpeg', 'excavator/surya_img13.jpeg', 'excavator/surya_img11.jpeg'] as const;
const LAKE = 'negative/imagenet_lakeside.jpg';

t.before(async (ctx) => {
  // Thresholds that hold for both backbones' (uncentred) embeddings (calibrate-similarity.ts):
  // same machine 0.84-0.89 (v1) / 0.66-0.84 (V2; this Kobelco pair 0.71), lake vs machine 0.52-0.54 (v1), < 0.58 (V2).
  ctx.agent = await startRealAgent({
    'comparison.thresholds': { similarityMatch: 0.7, similarityMismatch: 0.58 },
    'comparison.historyPerMachine': 3,
  });
  ctx.obs = await observer(ctx.agent, 'cmp');
});
t.after(async (ctx) => {
  await ctx.obs.bus.close();
  await ctx.agent.stop();
});

const analyse = async (ctx: Ctx, rel: string, query = ''): Promise<ComparisonResult> => {
  const res = await inject(ctx.agent, { method: 'POST', url: `/api/v1/images${query}`, payload: photoBytes(rel), headers: { 'content-type': 'image/jpeg' } });
  assert.is(res.statusCode, 202, res.body);
  const id = res.json<{ analysisId: string }>().analysisId;
  await until(() => ctx.obs.events.some((e) => e.subject === id && (e.type === 'analysis.completed' || e.type === 'analysis.failed')), 20_000, 'analysis end');
  const end = ctx.obs.events.find((e) => e.subject === id && e.type === 'analysis.completed');
  assert.ok(end && end.type === 'analysis.completed', `completed: ${JSON.stringify(ctx.obs.events.find((e) => e.subject === id && e.type === 'analysis.failed')?.data)}`);
  return ctx.agent.orchestrator.status(id)!.results.comparison!;
};

t('nothing registered → unknown', async (ctx) => {
  const c = await analyse(ctx, LAKE, '?machineId=other-machine');
  assert.is(c.verdict, 'unknown');
  assert.is(c.typeCheck.registeredType, null);
});

t('PUT /api/v1/machine validates and stores the profile (durably)', async (ctx) => {
  const bad = await inject(ctx.agent, { method: 'PUT', url: '/api/v1/machine', payload: { type: 'excavator', color: 'red' } });
  assert.is(bad.statusCode, 400);
  assert.is(bad.json<{ error: { code: string } }>().error.code, 'INVALID_REQUEST');
  const ok = await inject(ctx.agent, {
    method: 'PUT',
    url: '/api/v1/machine',
    payload: { id: 'kobelco-1', type: 'excavator', brand: 'Kobelco', model: 'SK210', serialNumber: 'YQ12-34567', name: 'Site A digger' },
  });
  assert.is(ok.statusCode, 200, ok.body);
  const got = await inject(ctx.agent, { method: 'GET', url: '/api/v1/machine' });
  assert.is(got.json<{ machine: { brand: string } }>().machine.brand, 'Kobelco');
});

t('reference photos are embedded and stored; bad reference input → 4xx', async (ctx) => {
  for (const rel of KOBELCO.slice(0, 2)) {
    const res = await inject(ctx.agent, { method: 'POST', url: '/api/v1/machine/references', payload: photoBytes(rel), headers: { 'content-type': 'image/jpeg' } });
    assert.is(res.statusCode, 201, res.body);
    assert.match(res.json<{ reference: { sha256: string } }>().reference.sha256, /^[0-9a-f]{64}$/);
  }
  const bad = await inject(ctx.agent, { method: 'POST', url: '/api/v1/machine/references', payload: 'nope', headers: { 'content-type': 'text/plain' } });
  assert.is(bad.statusCode, 415);
  const m = await inject(ctx.agent, { method: 'GET', url: '/api/v1/machine' });
  assert.is(m.json<{ references: unknown[] }>().references.length, 2);
});

t('another photo of the registered machine → match (best reference similarity)', async (ctx) => {
  const c = await analyse(ctx, KOBELCO[2]);
  assert.is(c.verdict, 'match', JSON.stringify(c));
  assert.is(c.bestMatch?.source, 'reference');
  assert.ok(c.scores.bestSimilarity! >= 0.7);
  assert.is(c.typeCheck.registeredType, 'excavator');
  assert.is(c.nearDuplicate.duplicate, false);
});

t('a photo of something else → mismatch (far from every reference)', async (ctx) => {
  const c = await analyse(ctx, LAKE);
  assert.is(c.verdict, 'mismatch', JSON.stringify(c));
  assert.ok(c.scores.bestSimilarity! < 0.58);
});

t('the same photo twice → nearDuplicate flagged (history in SQLite), still a match', async (ctx) => {
  const c = await analyse(ctx, KOBELCO[2]);
  assert.is(c.nearDuplicate.duplicate, true, JSON.stringify(c));
  assert.is(c.nearDuplicate.hammingDistance, 0);
  assert.is(c.verdict, 'match', JSON.stringify(c));
});

t('history is bounded per machine', async (ctx) => {
  assert.ok(ctx.agent.history.count('kobelco-1') <= 3);
  assert.ok(ctx.agent.history.count('kobelco-1') >= 2);
});

t('after a model change, references another model embedded are named as such, never "no reference photos"', async (ctx) => {
  // A reference of another model's dimension (a model update since it was registered).
  await ctx.agent.device.addReference({ sha256: 'e'.repeat(64), embedding: Array.from({ length: 1024 }, () => 0.1), addedAt: new Date().toISOString() });
  const c = await analyse(ctx, KOBELCO[2]);
  assert.ok(c.reasons.some((r) => /1 reference photo was embedded by another model .*register them again/.test(r)), JSON.stringify(c.reasons));
  assert.is(c.verdict, 'match', 'the references of this model still decide');
});

t.run();
