import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock, StepError, type AnyEvent, type BusClient } from '@tu/shared';
import type { Agent } from '@tu/agent';
import { uploaded } from './support/fixtures.js';
import { defaultResults, intake, observer, ofType, settle, startAllHandlers, startHandler, startTestAgent, testConfig, until } from './support/harness.js';

type Ctx = { agent: Agent; clients: BusClient[] };
const closeAll = async (ctx: Ctx) => {
  for (const c of ctx.clients.splice(0)) await c.close();
  await ctx.agent.stop();
};

const terminal = (events: AnyEvent[], id: string) => events.filter((e) => e.subject === id && (e.type === 'analysis.completed' || e.type === 'analysis.failed'));

// ---------------------------------------------------------------------------
const happy = suite<Ctx>('orchestrator: happy path');
happy.before(async (ctx) => {
  ctx.agent = await startTestAgent();
  ctx.clients = await startAllHandlers(ctx.agent);
});
happy.after(closeAll);

happy('runs the default plan (metadata beside recognition, comparison after it) and completes once with all results', async (ctx) => {
  const obs = await observer(ctx.agent);
  const up = await intake(ctx.agent);
  ctx.clients.push(obs.bus, up);
  const data = uploaded('gw-test');
  const uploadEvt = await up.publishEvent('tu.image.uploaded', data, { subject: data.analysisId });
  await obs.waitFor((ev) => terminal(ev, data.analysisId).length === 1);
  await settle();
  const mine = obs.events.filter((e) => e.subject === data.analysisId).map((e) => e.type);
  assert.equal(mine.slice(0, 2), ['tu.image.uploaded', 'analysis.started']);
  assert.equal([...mine.slice(2, 5)].sort(), ['comparison.completed', 'metadata.sorted', 'recognition.completed']);
  assert.ok(mine.indexOf('recognition.completed') < mine.indexOf('comparison.completed'), 'comparison waits for recognition');
  assert.is(mine[5], 'analysis.completed');
  assert.is(mine.length, 6);
  const started = ofType(obs.events, 'analysis.started', data.analysisId)[0]!;
  if (started.type !== 'analysis.started') return assert.unreachable();
  assert.equal(started.data.plan, [
    { step: 'recognition', needs: [], optional: false },
    { step: 'comparison', needs: ['recognition'], optional: false },
    { step: 'metadata', needs: [], optional: false },
  ]);
  const done = ofType(obs.events, 'analysis.completed', data.analysisId)[0]!;
  assert.is(done.type, 'analysis.completed');
  if (done.type !== 'analysis.completed') return;
  // Each result went out in its step's event; the terminal event does not repeat them (docs/messages.md).
  assert.is(done.data.results, undefined, 'no results on the bus');
  const results = ctx.agent.orchestrator.status(data.analysisId)!.results;
  assert.equal(results.recognition, defaultResults.recognition());
  assert.equal(results.metadata?.category, 'overview');
  assert.equal(done.data.steps.map((s) => [s.step, s.status, s.attempts]), [
    ['recognition', 'completed', 1],
    ['comparison', 'completed', 1],
    ['metadata', 'completed', 1],
  ]);
  assert.is(done.data.image.sha256, data.image.sha256);
  // trace context flows from the upload to the end
  assert.ok(uploadEvt.traceparent === undefined || done.traceparent?.slice(3, 35) === uploadEvt.traceparent.slice(3, 35));
  const st = ctx.agent.orchestrator.status(data.analysisId)!;
  assert.is(st.status, 'completed');
  assert.is(st.steps.length, 3);
  assert.ok(st.steps.every((s) => s.timeline.length === 1 && s.timeline[0]!.instance));
});

happy('passes each step the results of the steps it needs, and only those', async (ctx) => {
  const seen: { step: string; previous: string[]; recognised?: string }[] = [];
  const comparisonSpy = await startHandler(ctx.agent, 'comparison', async (cmd) => {
    seen.push({ step: 'comparison', previous: Object.keys(cmd.data.previous), ...(cmd.data.previous.recognition ? { recognised: cmd.data.previous.recognition.machineType } : {}) });
    return defaultResults.comparison();
  });
  const metadataSpy = await startHandler(ctx.agent, 'metadata', async (cmd) => {
    seen.push({ step: 'metadata', previous: Object.keys(cmd.data.previous) });
    return defaultResults.metadata();
  });
  ctx.clients.push(comparisonSpy, metadataSpy);
  // Take the default comparison and metadata handlers out so the spies get the commands.
  await ctx.clients[1]!.close();
  await ctx.clients[2]!.close();
  await settle();
  const up = await intake(ctx.agent);
  ctx.clients.push(up);
  const obs = await observer(ctx.agent);
  ctx.clients.push(obs.bus);
  const data = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', data, { subject: data.analysisId });
  await obs.waitFor((ev) => terminal(ev, data.analysisId).length === 1);
  assert.equal(
    seen.sort((a, b) => a.step.localeCompare(b.step)),
    [
      { step: 'comparison', previous: ['recognition'], recognised: 'excavator' },
      { step: 'metadata', previous: [] },
    ],
  );
});

happy.run();

// ---------------------------------------------------------------------------
const failures = suite<Ctx & { clock: ManualClock }>('orchestrator: failures, retries, timeouts (injected clock)');
failures.before.each(async (ctx) => {
  ctx.clock = new ManualClock();
  ctx.agent = await startTestAgent({
    clock: ctx.clock,
    random: () => 0.5,
    config: testConfig({ 'orchestrator.retry': { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 0.2 }, 'orchestrator.plan': { recognition: { timeoutMs: 1000 }, comparison: { timeoutMs: 1000 }, metadata: { timeoutMs: 1000 } } }),
  });
  ctx.clients = [];
});
failures.after.each(closeAll);

failures('a retryable failure is retried with backoff and then succeeds', async (ctx) => {
  let calls = 0;
  ctx.clients.push(
    await startHandler(ctx.agent, 'recognition', async () => {
      calls++;
      if (calls < 3) throw new StepError('WORKER_FAILED', 'model busy', true);
      return defaultResults.recognition();
    }),
    await startHandler(ctx.agent, 'comparison'),
    await startHandler(ctx.agent, 'metadata'),
  );
  const obs = await observer(ctx.agent);
  const up = await intake(ctx.agent);
  ctx.clients.push(obs.bus, up);
  const data = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', data, { subject: data.analysisId });
  await obs.waitFor((ev) => ofType(ev, 'recognition.failed').length === 1);
  await settle();
  assert.is(calls, 1, 'no retry before the backoff elapses');
  ctx.clock.advance(99); // first retry delay: 100 ms (jitter centred by random=0.5)
  await settle();
  assert.is(calls, 1);
  ctx.clock.advance(1);
  await obs.waitFor((ev) => ofType(ev, 'recognition.failed').length === 2);
  ctx.clock.advance(200); // second retry: 200 ms
  await obs.waitFor((ev) => terminal(ev, data.analysisId).length === 1);
  const done = terminal(obs.events, data.analysisId)[0]!;
  assert.is(done.type, 'analysis.completed');
  const st = ctx.agent.orchestrator.status(data.analysisId)!;
  assert.equal(st.steps[0]!.timeline.map((t) => t.outcome), ['failed', 'failed', 'completed']);
  assert.is(st.steps[0]!.timeline[0]!.error?.code, 'WORKER_FAILED');
});

failures('a non-retryable failure ends the analysis at once with analysis.failed naming the step', async (ctx) => {
  ctx.clients.push(
    await startHandler(ctx.agent, 'recognition'),
    await startHandler(ctx.agent, 'comparison', async () => {
      throw new StepError('EMBEDDING_LENGTH_MISMATCH', 'embedding length mismatch', false);
    }),
    await startHandler(ctx.agent, 'metadata'),
  );
  const obs = await observer(ctx.agent);
  const up = await intake(ctx.agent);
  ctx.clients.push(obs.bus, up);
  const data = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', data, { subject: data.analysisId });
  await obs.waitFor((ev) => terminal(ev, data.analysisId).length === 1);
  const f = terminal(obs.events, data.analysisId)[0]!;
  assert.is(f.type, 'analysis.failed');
  if (f.type !== 'analysis.failed') return;
  assert.is(f.data.failedStep, 'comparison');
  assert.is(f.data.reason.code, 'EMBEDDING_LENGTH_MISMATCH');
  const kept = ctx.agent.orchestrator.status(data.analysisId)!.results;
  assert.ok(kept.recognition, 'completed results are kept');
  assert.is(ofType(obs.events, 'comparison.failed').length, 1, 'no retry');
  // metadata ran beside recognition: its result is kept when it ended before the failure
  assert.ok(kept.metadata === undefined || kept.metadata.category === 'overview');
});

failures('retries exhausted → analysis.failed with RETRIES_EXHAUSTED', async (ctx) => {
  ctx.clients.push(
    await startHandler(ctx.agent, 'recognition', async () => {
      throw new StepError('BACKEND_UNAVAILABLE', 'decoder crashed', true);
    }),
    await startHandler(ctx.agent, 'metadata'), // runs beside recognition; without it metadata would fail first (NO_HANDLER)
  );
  const obs = await observer(ctx.agent);
  const up = await intake(ctx.agent);
  ctx.clients.push(obs.bus, up);
  const data = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', data, { subject: data.analysisId });
  for (let i = 1; i <= 3; i++) {
    await obs.waitFor((ev) => ofType(ev, 'recognition.failed').length === i);
    ctx.clock.advance(1000);
  }
  await obs.waitFor((ev) => terminal(ev, data.analysisId).length === 1);
  const f = terminal(obs.events, data.analysisId)[0]!;
  if (f.type !== 'analysis.failed') return assert.unreachable('expected analysis.failed');
  assert.is(f.data.reason.code, 'RETRIES_EXHAUSTED');
  assert.match(f.data.reason.message, /BACKEND_UNAVAILABLE/);
  assert.is(f.data.steps[0]!.attempts, 3);
});

failures('a handler that never answers times out, is retried, then fails with STEP_TIMEOUT', async (ctx) => {
  let calls = 0;
  ctx.clients.push(
    await startHandler(ctx.agent, 'recognition', () => {
      calls++;
      return new Promise(() => undefined); // hangs
    }),
    await startHandler(ctx.agent, 'metadata'),
  );
  const obs = await observer(ctx.agent);
  const up = await intake(ctx.agent);
  ctx.clients.push(obs.bus, up);
  const data = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', data, { subject: data.analysisId });
  await until(() => calls === 1);
  ctx.clock.advance(999);
  await settle();
  assert.is(calls, 1, 'no retry before the timeout');
  ctx.clock.advance(1); // timeout → retry after 100 ms
  ctx.clock.advance(100);
  await until(() => calls === 2);
  ctx.clock.advance(1000 + 200);
  await until(() => calls === 3);
  ctx.clock.advance(1000);
  await obs.waitFor((ev) => terminal(ev, data.analysisId).length === 1);
  const f = terminal(obs.events, data.analysisId)[0]!;
  if (f.type !== 'analysis.failed') return assert.unreachable();
  assert.is(f.data.reason.code, 'RETRIES_EXHAUSTED');
  assert.match(f.data.reason.message, /STEP_TIMEOUT/);
  assert.is(ctx.agent.orchestrator.stats.timeouts, 3);
});

failures('with no live handler the step waits up to its timeout, then fails with NO_HANDLER', async (ctx) => {
  const obs = await observer(ctx.agent);
  const up = await intake(ctx.agent);
  ctx.clients.push(obs.bus, up);
  const data = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', data, { subject: data.analysisId });
  // The analysis starts once its arrival is on disk (orchestrator.ts begin), then its steps wait.
  await until(() => ctx.agent.orchestrator.status(data.analysisId)?.steps[0]?.status === 'waiting', 5000, 'recognition waiting for a handler');
  ctx.clock.advance(1000);
  await obs.waitFor((ev) => terminal(ev, data.analysisId).length === 1);
  const f = terminal(obs.events, data.analysisId)[0]!;
  if (f.type !== 'analysis.failed') return assert.unreachable();
  assert.is(f.data.failedStep, 'recognition');
  assert.is(f.data.reason.code, 'NO_HANDLER');
  assert.match(f.data.reason.message, /svc-ai-vision-adapter/);
});

failures('a waiting step is dispatched as soon as a handler appears', async (ctx) => {
  const obs = await observer(ctx.agent);
  const up = await intake(ctx.agent);
  ctx.clients.push(obs.bus, up);
  const data = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', data, { subject: data.analysisId });
  await settle();
  ctx.clock.advance(500);
  ctx.clients.push(...(await startAllHandlers(ctx.agent)));
  await obs.waitFor((ev) => terminal(ev, data.analysisId).length === 1);
  assert.is(terminal(obs.events, data.analysisId)[0]!.type, 'analysis.completed');
});

failures('a command held by an instance that dies is re-dispatched to another instance', async (ctx) => {
  let aCalls = 0;
  const a = await startHandler(ctx.agent, 'recognition', () => {
    aCalls++;
    return new Promise(() => undefined);
  }, 'svc-ai-vision-adapter:a');
  ctx.clients.push(await startHandler(ctx.agent, 'comparison'), await startHandler(ctx.agent, 'metadata'));
  const obs = await observer(ctx.agent);
  const up = await intake(ctx.agent);
  ctx.clients.push(obs.bus, up);
  const data = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', data, { subject: data.analysisId });
  await until(() => aCalls === 1);
  const b = await startHandler(ctx.agent, 'recognition', undefined, 'svc-ai-vision-adapter:b');
  ctx.clients.push(b);
  a.destroyConnection(); // last will clears its presence
  await obs.waitFor((ev) => terminal(ev, data.analysisId).length === 1);
  const st = ctx.agent.orchestrator.status(data.analysisId)!;
  assert.is(st.status, 'completed');
  assert.is(st.steps[0]!.timeline.length, 1, 'same attempt, re-sent');
  assert.is(st.steps[0]!.timeline[0]!.instance, 'svc-ai-vision-adapter:b');
  assert.is(st.steps[0]!.timeline[0]!.resends, 1);
});

failures.run();
