import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boundedText, ManualClock, MAX_DURATION_MS, StepError, type AnyEvent, type BusClient } from '@tu/shared';
import type { Agent } from '@tu/agent';
import { recognitionResult, uploaded } from './support/fixtures.js';
import { defaultResults, intake, observer, settle, startHandler, startTestAgent, testConfig, tmpDir, until } from './support/harness.js';

/**
 * The orchestrator where the field is unkind (a review's reproduced defects): plans with chains
 * of optional steps, the wall clock set under a running analysis, failure texts that no receiver
 * takes, answers of attempts already over, an agent restarted with its clock behind.
 */
const test = suite<{ agents: Agent[]; clients: BusClient[] }>('orchestrator: robustness');
test.before.each((ctx) => {
  ctx.agents = [];
  ctx.clients = [];
});
test.after.each(async (ctx) => {
  for (const c of ctx.clients) await c.close().catch(() => undefined);
  for (const a of ctx.agents) await a.stop().catch(() => undefined);
});

const terminal = (events: AnyEvent[], id: string) => events.filter((e) => e.subject === id && (e.type === 'analysis.completed' || e.type === 'analysis.failed'));

/** An observer of the bus and an intake client (closed after the test); `upload()` publishes a new photo's upload. */
async function watch(ctx: { clients: BusClient[] }, agent: Agent) {
  const obs = await observer(agent);
  const up = await intake(agent);
  ctx.clients.push(obs.bus, up);
  const upload = async () => {
    const d = uploaded('gw-test');
    await up.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
    return d;
  };
  return { obs, upload };
}

test('an optional step that needs an optional step which failed fails at once with the reason; the analysis completes and frees its slot', async (ctx) => {
  const config = testConfig({ 'orchestrator.plan': { nameplate: { optional: true, timeoutMs: 5000, retry: { maxAttempts: 1 } }, metadata: { optional: true, needs: ['nameplate'] } } });
  const agent = await startTestAgent({ config });
  ctx.agents.push(agent);
  ctx.clients.push(
    await startHandler(agent, 'recognition'),
    await startHandler(agent, 'comparison'),
    await startHandler(agent, 'metadata'),
    await startHandler(agent, 'nameplate', async () => {
      throw new StepError('IMAGE_DECODE_FAILED', 'nameplate unreadable', false);
    }),
  );
  const { obs, upload } = await watch(ctx, agent);
  const d = await upload();
  await obs.waitFor((ev) => terminal(ev, d.analysisId).length > 0);
  const [end] = terminal(obs.events, d.analysisId);
  assert.is(end!.type, 'analysis.completed');
  const steps = (end!.data as { steps: { step: string; status: string; error?: { code: string; message: string } }[] }).steps;
  const meta = steps.find((s) => s.step === 'metadata')!;
  assert.is(meta.status, 'failed');
  assert.is(meta.error?.code, 'STEP_FAILED');
  assert.match(meta.error!.message, /metadata needs nameplate, which failed \(IMAGE_DECODE_FAILED: nameplate unreadable\)/);
  assert.is(agent.orchestrator.stats.running, 0, 'the slot is free');
});

for (const [what, jump] of [
  ['set back a minute', -60_000],
  ['set 25 hours ahead', 25 * 3600_000],
] as const) {
  test(`the wall clock ${what} under a running analysis: it completes with durations in bounds, and the agent keeps running`, async (ctx) => {
    const clock = new ManualClock();
    const agent = await startTestAgent({ clock, config: testConfig() });
    ctx.agents.push(agent);
    let release: (() => void) | undefined;
    ctx.clients.push(
      await startHandler(agent, 'recognition', async () => {
        await new Promise<void>((r) => (release = r));
        return recognitionResult();
      }),
      await startHandler(agent, 'comparison'),
      await startHandler(agent, 'metadata'),
    );
    const { obs, upload } = await watch(ctx, agent);
    const d = await upload();
    await until(() => release !== undefined);
    clock.setWall(clock.now() + jump);
    release!();
    await obs.waitFor((ev) => terminal(ev, d.analysisId).length > 0);
    const data = terminal(obs.events, d.analysisId)[0]!.data as { durationMs: number; steps: { durationMs?: number }[] };
    assert.is(terminal(obs.events, d.analysisId)[0]!.type, 'analysis.completed');
    for (const ms of [data.durationMs, ...data.steps.map((s) => s.durationMs ?? 0)]) assert.ok(ms >= 0 && ms <= MAX_DURATION_MS, `duration ${ms}`);
    assert.is(agent.orchestrator.stats.endErrors, 0);
  });
}

test('boundedText: never half a surrogate pair, never a NUL or a lone surrogate', () => {
  const text = 'x'.repeat(1999) + '🚜 and more';
  const cut = boundedText(text, 2000);
  assert.is(cut, 'x'.repeat(1999));
  assert.not.ok(/\p{Cs}/u.test(cut));
  assert.is(boundedText('a\u0000b\ud800c', 100), 'a\ufffdb\ufffdc');
  assert.is(boundedText('🚜🚜', 4), '🚜🚜');
});

test('a failure text cut through an emoji still reaches every receiver: the retries-exhausted reason, and a handler\'s own over-long message', async (ctx) => {
  const clock = new ManualClock();
  const agent = await startTestAgent({ clock, random: () => 0.5, config: testConfig({ 'orchestrator.retry': { maxAttempts: 2, initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 0 } }) });
  ctx.agents.push(agent);
  const prefix = 'recognition failed 2 times; last: WORKER_FAILED: ';
  // The handler's message is valid (1990 characters); with the orchestrator's prefix an emoji straddles character 2000.
  const msg = ('x'.repeat(2000 - prefix.length - 1) + '🚜').padEnd(1990, 'y');
  let calls = 0;
  let metadataFails = false;
  ctx.clients.push(
    await startHandler(agent, 'recognition', async () => {
      if (metadataFails) return recognitionResult();
      calls++;
      throw new StepError('WORKER_FAILED', msg, true);
    }),
    await startHandler(agent, 'comparison'),
    await startHandler(agent, 'metadata', async () => {
      // Over 2000 characters, cut through an emoji: the step's failure must still arrive.
      if (metadataFails) throw new StepError('INVALID_INPUT', 'x'.repeat(1999) + '🚜 too long', false);
      return defaultResults.metadata();
    }),
  );
  const { obs, upload } = await watch(ctx, agent);
  const d = await upload();
  await until(() => calls === 1);
  await settle(100);
  clock.advance(100);
  await until(() => calls === 2);
  await obs.waitFor((ev) => terminal(ev, d.analysisId).length > 0);
  const end = terminal(obs.events, d.analysisId)[0]!;
  assert.is(end.type, 'analysis.failed');
  const reason = (end.data as { reason: { code: string; message: string } }).reason;
  assert.is(reason.code, 'RETRIES_EXHAUSTED');
  assert.not.ok(/\p{Cs}/u.test(reason.message));

  metadataFails = true;
  const e = await upload();
  await obs.waitFor((ev) => terminal(ev, e.analysisId).length > 0);
  const end2 = terminal(obs.events, e.analysisId)[0]!;
  const reason2 = (end2.data as { reason: { code: string; message: string } }).reason;
  assert.is(reason2.code, 'INVALID_INPUT', "the handler's failure arrived (not STEP_TIMEOUT)");
  assert.is(reason2.message, 'x'.repeat(1999));
  assert.is(obs.bus.stats.rejected, 0, 'the observer refused nothing');
});

test('a late failure of an attempt that timed out is ignored: the scheduled retry runs and the analysis completes', async (ctx) => {
  const clock = new ManualClock();
  const agent = await startTestAgent({ clock, random: () => 0.5, config: testConfig({ 'orchestrator.retry': { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 0 }, 'orchestrator.plan': { recognition: { timeoutMs: 1000 } } }) });
  ctx.agents.push(agent);
  let calls = 0;
  let fail1: (() => void) | undefined;
  ctx.clients.push(
    await startHandler(agent, 'recognition', async () => {
      calls++;
      if (calls === 1) {
        await new Promise<void>((r) => (fail1 = r));
        throw new StepError('MODEL_NOT_FOUND', 'late answer of attempt 1', false);
      }
      return recognitionResult();
    }),
    await startHandler(agent, 'comparison'),
    await startHandler(agent, 'metadata'),
  );
  const { obs, upload } = await watch(ctx, agent);
  const d = await upload();
  await until(() => calls === 1);
  clock.advance(1000); // attempt 1 times out; the retry is due 100 ms later
  await settle(50);
  fail1!();
  await obs.waitFor((ev) => ev.some((e) => e.subject === d.analysisId && e.type === 'recognition.failed'));
  await settle(100);
  assert.is(agent.orchestrator.stats.ignored.staleFailure, 1);
  assert.is(agent.orchestrator.stats.retries, 1, 'the retry is counted once');
  clock.advance(100);
  await obs.waitFor((ev) => terminal(ev, d.analysisId).length > 0);
  assert.is(terminal(obs.events, d.analysisId)[0]!.type, 'analysis.completed');
  const timeline = agent.orchestrator.status(d.analysisId)!.steps[0]!.timeline.map((t) => t.outcome);
  assert.equal(timeline, ['timeout', 'completed'], 'attempt 1 stays a timeout');
});

test('a late completion of a timed-out attempt does not release the instance twice: its in-flight count stays true', async (ctx) => {
  const clock = new ManualClock();
  const agent = await startTestAgent({ clock, random: () => 0.5, config: testConfig({ 'orchestrator.retry': { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: 0 }, 'orchestrator.plan': { recognition: { timeoutMs: 1000 } } }) });
  ctx.agents.push(agent);
  const gates: (() => void)[] = [];
  ctx.clients.push(
    await startHandler(
      agent,
      'recognition',
      async () => {
        await new Promise<void>((r) => gates.push(r));
        return recognitionResult();
      },
      'svc-ai-vision-adapter:a',
    ),
    await startHandler(agent, 'comparison', async () => new Promise(() => undefined)),
    await startHandler(agent, 'metadata'),
  );
  const { upload } = await watch(ctx, agent);
  const inflight = () => agent.orchestrator.instances().find((i) => i.instanceId === 'svc-ai-vision-adapter:a')!.inflight;
  const x = await upload();
  await until(() => gates.length === 1);
  clock.advance(1000); // x's attempt 1 times out
  await settle(50);
  await upload(); // y, on the same instance
  await until(() => gates.length === 2);
  assert.is(inflight(), 1, 'y on the instance');
  gates[0]!(); // x's late completion
  await until(() => agent.orchestrator.status(x.analysisId)!.steps[0]!.status === 'completed');
  await settle(50);
  assert.is(inflight(), 1, 'y still on the instance');
});

test('the only handler leaves holding a command: NO_HANDLER with its advice, never "instance undefined"', async (ctx) => {
  const clock = new ManualClock();
  const agent = await startTestAgent({ clock, config: testConfig({ 'orchestrator.retry': { maxAttempts: 1 }, 'orchestrator.plan': { recognition: { timeoutMs: 1000 } } }) });
  ctx.agents.push(agent);
  let calls = 0;
  const a = await startHandler(agent, 'recognition', () => (calls++, new Promise(() => undefined)), 'svc-ai-vision-adapter:a');
  ctx.clients.push(a, await startHandler(agent, 'comparison'), await startHandler(agent, 'metadata'));
  const { upload } = await watch(ctx, agent);
  const d = await upload();
  await until(() => calls === 1);
  a.destroyConnection();
  await until(() => !agent.orchestrator.instances().some((i) => i.instanceId === 'svc-ai-vision-adapter:a'));
  clock.advance(1000);
  await until(() => agent.orchestrator.status(d.analysisId)?.status === 'failed');
  const reason = agent.orchestrator.status(d.analysisId)!.failure!.reason;
  assert.is(reason.code, 'NO_HANDLER');
  assert.match(reason.message, /start the service/);
  assert.not.match(reason.message, /undefined/);
});

test('restarted with its wall clock hours behind, a step waiting to retry waits no longer than the policy\'s longest delay', async (ctx) => {
  const dataDir = tmpDir();
  const T0 = Date.UTC(2026, 5, 1, 12, 0);
  const config = () => testConfig({ 'orchestrator.retry': { maxAttempts: 3, initialDelayMs: 500, maxDelayMs: 1000, multiplier: 2, jitter: 0 } }, dataDir);
  const first = await startTestAgent({ clock: new ManualClock(T0), config: config() });
  const h1 = [
    await startHandler(first, 'recognition', async () => {
      throw new StepError('WORKER_FAILED', 'busy', true);
    }),
    await startHandler(first, 'comparison'),
    await startHandler(first, 'metadata'),
  ];
  const up1 = await intake(first);
  const d = uploaded('gw-test');
  await up1.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
  await until(() => first.orchestrator.stats.retries === 1);
  await settle(300); // the retry's state is written
  for (const c of [...h1, up1]) await c.close();
  await first.stop();

  const clock = new ManualClock(T0 - 6 * 3600_000); // boots with its clock 6 h behind
  const agent = await startTestAgent({ clock, config: config() });
  ctx.agents.push(agent);
  let calls = 0;
  ctx.clients.push(
    await startHandler(agent, 'recognition', async () => {
      calls++;
      return recognitionResult();
    }),
    await startHandler(agent, 'comparison'),
    await startHandler(agent, 'metadata'),
  );
  await settle(200);
  clock.advance(1000);
  await until(() => agent.orchestrator.status(d.analysisId)?.status === 'completed', 5000, 'completed within the longest delay');
  assert.is(calls, 1);
  assert.is(agent.orchestrator.stats.running, 0);
});

test('a required step fails with one step in flight, one waiting to retry and one not started: once the analysis has failed none says running, waiting or pending, in analysis.failed or in the stored state', async (ctx) => {
  const clock = new ManualClock();
  // nameplate (optional) fails once with a retryable error and waits a minute to retry; metadata
  // (required) then fails for good while recognition still works and comparison waits for it.
  const config = testConfig({ 'orchestrator.plan': { nameplate: { optional: true, timeoutMs: 5000, retry: { maxAttempts: 3, initialDelayMs: 60_000, maxDelayMs: 60_000, jitter: 0 } } } });
  const agent = await startTestAgent({ clock, config });
  ctx.agents.push(agent);
  let releaseRecognition: (() => void) | undefined;
  let failMetadata: (() => void) | undefined;
  let nameplateCalls = 0;
  ctx.clients.push(
    await startHandler(agent, 'recognition', async () => {
      await new Promise<void>((r) => (releaseRecognition = r));
      return recognitionResult();
    }),
    await startHandler(agent, 'comparison'),
    await startHandler(agent, 'metadata', async () => {
      await new Promise<void>((r) => (failMetadata = r));
      throw new StepError('IMAGE_DECODE_FAILED', 'the photo cannot be decoded for its metadata', false);
    }),
    await startHandler(agent, 'nameplate', async () => {
      nameplateCalls++;
      throw new StepError('WORKER_FAILED', 'busy', true);
    }),
  );
  const { obs, upload } = await watch(ctx, agent);
  const d = await upload();
  const statuses = (steps: { step: string; status: string }[]) => Object.fromEntries(steps.map((s) => [s.step, s.status]));
  await until(() => releaseRecognition !== undefined && failMetadata !== undefined);
  await until(() => agent.orchestrator.status(d.analysisId)?.steps.find((s) => s.step === 'nameplate')?.status === 'waiting', 5000, 'nameplate waiting to retry');
  assert.equal(statuses(agent.orchestrator.status(d.analysisId)!.steps), { recognition: 'running', comparison: 'pending', metadata: 'running', nameplate: 'waiting' }, 'precondition');
  failMetadata!();
  await obs.waitFor((ev) => terminal(ev, d.analysisId).length > 0);
  const end = terminal(obs.events, d.analysisId)[0]!;
  if (end.type !== 'analysis.failed') return assert.unreachable(`expected analysis.failed, got ${end.type}`);
  assert.is(end.data.failedStep, 'metadata');
  const expected = { recognition: 'cancelled', comparison: 'skipped', metadata: 'failed', nameplate: 'cancelled' };
  assert.equal(statuses(end.data.steps), expected, 'analysis.failed');
  const recognition = end.data.steps.find((s) => s.step === 'recognition')!;
  assert.ok(recognition.startedAt && recognition.endedAt, 'a cancelled step says when it started and when it was cancelled');
  const comparison = end.data.steps.find((s) => s.step === 'comparison')!;
  assert.equal([comparison.attempts, comparison.startedAt, comparison.endedAt], [0, undefined, undefined], 'a skipped step never started');
  // Read from the database: the row closed, nothing of it left to write.
  await until(() => agent.store.stats.pendingRows === 0 && !agent.store.loadOpen().some((s) => s.analysisId === d.analysisId), 5000, 'the terminal state stored');
  assert.equal(statuses(agent.store.get(d.analysisId)!.steps.map((s) => ({ step: s.name, status: s.status }))), expected, 'the stored state');
  const view = agent.orchestrator.status(d.analysisId)!;
  assert.equal(statuses(view.steps), expected, 'GET /api/v1/analyses/:id');
  assert.equal(view.steps.find((s) => s.step === 'recognition')!.timeline.map((t) => [t.outcome, t.endedAt !== undefined]), [['cancelled', true]], 'the attempt in flight ended, cancelled');

  // The late answer and the retry's due time change nothing.
  releaseRecognition!();
  await obs.waitFor((ev) => ev.some((e) => e.subject === d.analysisId && e.type === 'recognition.completed'));
  clock.advance(60_000);
  await settle(100);
  assert.is(nameplateCalls, 1, 'no retry after the end');
  assert.equal(statuses(agent.orchestrator.status(d.analysisId)!.steps), expected);
  assert.is(terminal(obs.events, d.analysisId).length, 1);
});

test.run();
