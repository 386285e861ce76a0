import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { newId, STEPS, type AnyEvent, type BusClient } from '@tu/shared';
import { connectService, type Agent } from '@tu/agent';
import { comparisonResult, metadataResult, recognitionResult, uploaded } from './support/fixtures.js';
import { intake, observer, ofType, settle, startHandler, startTestAgent, until } from './support/harness.js';

type Ctx = { agent: Agent; clients: BusClient[] };
const test = suite<Ctx>('orchestrator: duplicate, late, out-of-order and unknown events');
test.before.each(async (ctx) => {
  ctx.agent = await startTestAgent();
  ctx.clients = [];
});
test.after.each(async (ctx) => {
  for (const c of ctx.clients.splice(0)) await c.close();
  await ctx.agent.stop();
});

const terminal = (events: AnyEvent[], id: string) => events.filter((e) => e.subject === id && (e.type === 'analysis.completed' || e.type === 'analysis.failed'));

test('duplicate deliveries of every event change nothing; one analysis.completed', async (ctx) => {
  // Handlers that deliver each answer three times (QoS 1 is at-least-once).
  const handlers = await Promise.all((['recognition', 'comparison', 'metadata'] as const).map((s) => startHandler(ctx.agent, s)));
  ctx.clients.push(...handlers);
  const obs = await observer(ctx.agent);
  const up = await intake(ctx.agent);
  ctx.clients.push(obs.bus, up);
  for (const [i, h] of handlers.entries()) {
    const step = (['recognition', 'comparison', 'metadata'] as const)[i]!;
    await h.onEvents([STEPS[step].completed], async (e) => {
      if (e.source.endsWith(h.service)) {
        await h.republish(e);
        await h.republish(e);
      }
    });
  }
  const data = uploaded('gw-test');
  const evt = await up.publishEvent('tu.image.uploaded', data, { subject: data.analysisId });
  await up.republish(evt); // duplicate upload event, same id
  await obs.waitFor((ev) => terminal(ev, data.analysisId).length >= 1);
  await settle(100);
  assert.is(terminal(obs.events, data.analysisId).length, 1);
  assert.is(ofType(obs.events, 'analysis.started', data.analysisId).length, 1);
  const s = ctx.agent.orchestrator.stats;
  assert.is(s.ignored.duplicateUpload, 1);
  assert.ok(s.ignored.lateOrDuplicate + s.ignored.unknownAnalysis >= 6, `ignored ${JSON.stringify(s.ignored)}`);
  assert.is(ctx.agent.orchestrator.status(data.analysisId)?.steps.every((st) => st.attempts === 1), true);
});

test('late events for finished steps, out-of-order step events and unknown analyses are ignored', async (ctx) => {
  let release: (() => void) | undefined;
  const vision = await startHandler(ctx.agent, 'recognition', async () => {
    await new Promise<void>((r) => (release = r));
    return recognitionResult();
  });
  const meta = await startHandler(ctx.agent, 'metadata');
  const comp = await startHandler(ctx.agent, 'comparison');
  const forger = await connectService(ctx.agent.busIdentity, 'metadata-service');
  const obs = await observer(ctx.agent);
  const up = await intake(ctx.agent);
  ctx.clients.push(vision, meta, comp, forger, obs.bus, up);
  const data = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', data, { subject: data.analysisId });
  await until(() => release !== undefined);
  // Out of order: comparison answers before it was asked (it needs recognition, which is still running).
  const before = { ...ctx.agent.orchestrator.stats.ignored };
  const compForger = await connectService(ctx.agent.busIdentity, 'comparison-service');
  ctx.clients.push(compForger);
  await compForger.publishEvent('comparison.completed', { analysisId: data.analysisId, attempt: 1, commandId: newId(), instance: 'x', durationMs: 1, result: comparisonResult() }, { subject: data.analysisId });
  // Unknown analysis.
  const ghost = uploaded('gw-test').analysisId;
  await forger.publishEvent('metadata.sorted', { analysisId: ghost, attempt: 1, commandId: newId(), instance: 'x', durationMs: 1, result: metadataResult() }, { subject: ghost });
  await settle();
  const after = ctx.agent.orchestrator.stats.ignored;
  assert.is(after.lateOrDuplicate - before.lateOrDuplicate, 1);
  assert.is(after.unknownAnalysis - before.unknownAnalysis, 1);
  assert.is(ctx.agent.orchestrator.status(data.analysisId)?.steps.find((st) => st.step === 'comparison')?.status, 'pending');
  assert.is(ctx.agent.orchestrator.status(ghost), undefined, 'no state for the unknown analysis');
  release!();
  await obs.waitFor((ev) => terminal(ev, data.analysisId).length === 1);
  // Late: a second recognition answer after the analysis finished.
  await forger.close();
  const visionForger = await connectService(ctx.agent.busIdentity, 'svc-ai-vision-adapter');
  ctx.clients.push(visionForger);
  await visionForger.publishEvent('recognition.failed', { analysisId: data.analysisId, attempt: 1, commandId: newId(), instance: 'x', durationMs: 1, error: { code: 'LATE', message: 'late', retryable: true } }, { subject: data.analysisId });
  await settle();
  assert.is(terminal(obs.events, data.analysisId).length, 1);
  assert.is(terminal(obs.events, data.analysisId)[0]!.type, 'analysis.completed');
  assert.is(ctx.agent.orchestrator.status(data.analysisId)?.status, 'completed');
});

test('bounded concurrency: analyses beyond maxConcurrent wait in the queue', async (ctx) => {
  const releases: (() => void)[] = [];
  ctx.clients.push(
    await startHandler(ctx.agent, 'recognition', async () => {
      await new Promise<void>((r) => releases.push(r));
      return recognitionResult();
    }),
    await startHandler(ctx.agent, 'comparison'),
    await startHandler(ctx.agent, 'metadata'),
  );
  const obs = await observer(ctx.agent);
  const up = await intake(ctx.agent);
  ctx.clients.push(obs.bus, up);
  const max = ctx.agent.config.orchestrator.maxConcurrent;
  const ids: string[] = [];
  for (let i = 0; i < max + 3; i++) {
    const d = uploaded('gw-test');
    ids.push(d.analysisId);
    await up.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
  }
  await until(() => releases.length === max);
  await settle();
  assert.is(releases.length, max, 'only maxConcurrent analyses run');
  assert.is(ctx.agent.orchestrator.stats.queued, 3);
  assert.is(ctx.agent.orchestrator.status(ids[max]!)?.status, 'queued');
  while (ofType(obs.events, 'analysis.completed').length < ids.length) {
    releases.splice(0).forEach((r) => r());
    await settle(5);
  }
  assert.is(ofType(obs.events, 'analysis.completed').length, ids.length);
});

test.run();
