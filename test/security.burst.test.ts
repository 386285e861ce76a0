import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { AnyEvent, BusClient } from '@tu/shared';
import type { Agent } from '@tu/agent';
import { recognitionResult } from './support/fixtures.js';
import { photoBytes } from './support/data.js';
import { inject, observer, startHandler, startTestAgent, testConfig } from './support/harness.js';

// Issue 8 #7: in a burst of 1,200 uploads all got a 202, and 187 of them later failed with
// QUEUE_FULL. A 202 is a promise: once the queue is full, the door says 429 with Retry-After.

type Ctx = { agent: Agent; clients: BusClient[]; release: () => void };
const test = suite<Ctx>('security: an upload burst beyond the queue is refused at the door, never accepted and then dropped');
test.before(async (ctx) => {
  ctx.agent = await startTestAgent({ config: testConfig({ 'orchestrator.maxConcurrent': 2, 'orchestrator.maxQueue': 5 }) });
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  ctx.release = open;
  // Recognition holds every analysis until released, so the queue fills.
  ctx.clients = [
    await startHandler(ctx.agent, 'recognition', async () => {
      await gate;
      return recognitionResult();
    }),
    await startHandler(ctx.agent, 'comparison'),
    await startHandler(ctx.agent, 'metadata'),
  ];
});
test.after(async (ctx) => {
  for (const c of ctx.clients) await c.close();
  await ctx.agent.stop();
});

test('a burst of 40: at most maxConcurrent + maxQueue get 202, the rest 429 + Retry-After, and every 202 completes', async (ctx) => {
  const obs = await observer(ctx.agent);
  ctx.clients.push(obs.bus);
  const photo = photoBytes('forklift/imagenet_n03384352_forklift.jpg');
  const answers = await Promise.all(
    Array.from({ length: 40 }, () => inject(ctx.agent, { method: 'POST', url: '/api/v1/images', payload: photo, headers: { 'content-type': 'image/jpeg' } })),
  );
  const accepted = answers.filter((r) => r.statusCode === 202).map((r) => (r.json() as { analysisId: string }).analysisId);
  const refused = answers.filter((r) => r.statusCode === 429);
  assert.is(accepted.length + refused.length, 40, `statuses: ${answers.map((r) => r.statusCode).join(',')}`);
  assert.ok(accepted.length >= 1 && accepted.length <= 7, `${accepted.length} accepted`);
  for (const r of refused) {
    assert.is((r.json() as { error: { code: string } }).error.code, 'QUEUE_FULL');
    assert.ok(Number(r.headers['retry-after']) > 0);
  }
  ctx.release();
  const ended = (ev: AnyEvent[]) => ev.filter((e) => (e.type === 'analysis.completed' || e.type === 'analysis.failed') && accepted.includes(e.subject ?? ''));
  await obs.waitFor((ev) => ended(ev).length === accepted.length, 15_000);
  assert.equal(ended(obs.events).map((e) => e.type), accepted.map(() => 'analysis.completed'), 'every 202 was kept');
  // With room again, the door opens.
  const again = await inject(ctx.agent, { method: 'POST', url: '/api/v1/images', payload: photo, headers: { 'content-type': 'image/jpeg' } });
  assert.is(again.statusCode, 202);
});

test.run();
