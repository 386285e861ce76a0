import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, StepError, type AnyEvent, type BusClient } from '@tu/shared';
import { loadAgentConfig } from '@tu/firmware-config';
import type { Agent } from '@tu/agent';
import { nameplateResult, recognitionResult, uploaded } from './support/fixtures.js';
import { inject, intake, observer, ofType, settle, startHandler, startTestAgent, testConfig, tmpDir, until } from './support/harness.js';

type Ctx = { agent?: Agent; clients: BusClient[] };
const terminal = (events: AnyEvent[], id: string) => events.filter((e) => e.subject === id && (e.type === 'analysis.completed' || e.type === 'analysis.failed'));

/** The problems a config file gives, as `field: message` lines. */
function problemsOf(config: unknown, env: Record<string, string> = {}): string[] {
  const f = path.join(tmpDir(), 'agent.json');
  fs.writeFileSync(f, JSON.stringify({ gatewayId: 'gw-plan', ...(config as object) }));
  try {
    loadAgentConfig({ file: f, env });
  } catch (err) {
    assert.instance(err, ConfigError);
    return (err as ConfigError).problems.map((p) => `${p.field}: ${p.message}`);
  }
  return [];
}

// ---------------------------------------------------------------------------
const config = suite('analysis plan: validated where it enters');

config('the default plan: metadata needs nothing, comparison needs recognition, in dependency order', () => {
  const c = loadAgentConfig({ env: {}, overrides: { gatewayId: 'gw-plan' } });
  assert.equal(
    c.orchestrator.plan.map((p) => [p.step, p.needs, p.optional, p.timeoutMs]),
    [
      ['recognition', [], false, 30_000],
      ['comparison', ['recognition'], false, 10_000],
      ['metadata', [], false, 10_000],
    ],
  );
  assert.equal(c.orchestrator.plan[0]!.retry, c.orchestrator.retry, 'a step without its own policy inherits orchestrator.retry');
});

config('a profile adds a step, changes one step\'s timeout and retry policy, and drops a step', () => {
  const c = loadAgentConfig({
    env: {},
    overrides: {
      gatewayId: 'gw-plan',
      'orchestrator.plan': { nameplate: { optional: true, timeoutMs: 20_000, retry: { maxAttempts: 1 } }, recognition: { timeoutMs: 45_000 } },
    },
  });
  const byStep = Object.fromEntries(c.orchestrator.plan.map((p) => [p.step, p]));
  assert.equal(c.orchestrator.steps, ['recognition', 'comparison', 'metadata', 'nameplate']);
  assert.is(byStep['recognition']!.timeoutMs, 45_000);
  assert.equal(byStep['nameplate']!.retry, { ...c.orchestrator.retry, maxAttempts: 1 });
  assert.is(byStep['nameplate']!.optional, true);
  const dropped = loadAgentConfig({ env: { TU_STEPS: 'metadata' }, overrides: { gatewayId: 'gw-plan' } });
  assert.equal(dropped.orchestrator.plan.map((p) => p.step), ['metadata']);
  // The deprecated per-step timeouts still apply where the plan sets none.
  const old = loadAgentConfig({ env: {}, overrides: { gatewayId: 'gw-plan', 'orchestrator.stepTimeoutMs': { comparison: 1234 } } });
  assert.is(old.orchestrator.plan.find((p) => p.step === 'comparison')!.timeoutMs, 1234);
});

config('unknown steps, cycles, needs outside the plan, needed optional steps and steps without a timeout are refused, naming the field', () => {
  const has = (problems: string[], field: string, message: RegExp) =>
    assert.ok(problems.some((p) => p.startsWith(`${field}: `) && message.test(p)), `expected ${field} ~ ${message}; got:\n${problems.join('\n')}`);
  has(problemsOf({ orchestrator: { plan: { ocr: { timeoutMs: 1000 } } } }), 'orchestrator.plan', /Unrecognized key: "ocr"/);
  has(problemsOf({ orchestrator: { plan: { comparison: { needs: ['ocr'] } } } }), 'orchestrator.plan.comparison.needs.0', /./);
  has(problemsOf({ orchestrator: { plan: { recognition: { needs: ['metadata'] }, metadata: { needs: ['recognition'] } } } }), 'orchestrator.plan.recognition.needs', /cycle: recognition → metadata → recognition/);
  has(problemsOf({}, { TU_STEPS: 'comparison,metadata' }), 'orchestrator.plan.comparison.needs.0', /comparison needs recognition, which is not a step of the plan/);
  has(problemsOf({ orchestrator: { plan: { recognition: { optional: true } } } }), 'orchestrator.plan.recognition.optional', /comparison needs it/);
  has(problemsOf({}, { TU_STEPS: 'recognition,nameplate' }), 'orchestrator.steps.1', /nameplate has no plan entry/);
  has(problemsOf({ orchestrator: { plan: { metadata: { timeoutMs: 0 } } } }), 'orchestrator.plan.metadata.timeoutMs', /./);
  has(problemsOf({ orchestrator: { plan: { metadata: { retry: { initialDelayMs: 500, maxDelayMs: 100 } } } } }), 'orchestrator.plan.metadata.retry.maxDelayMs', /maxDelayMs must be >= initialDelayMs/);
});

config('the orchestrator refuses an unsound plan at start, whoever built the config', async () => {
  const cfg = testConfig();
  const cyclic = {
    ...cfg,
    orchestrator: {
      ...cfg.orchestrator,
      plan: cfg.orchestrator.plan.map((p) => (p.step === 'recognition' ? { ...p, needs: ['comparison' as const] } : p)),
    },
  };
  let err: unknown;
  await startTestAgent({ config: cyclic }).then((a) => a.stop(), (e: unknown) => (err = e));
  assert.instance(err, ConfigError);
  assert.match((err as Error).message, /orchestrator\.plan\.recognition\.needs: the plan's needs form a cycle/);
});

config.run();

// ---------------------------------------------------------------------------
const running = suite<Ctx>('analysis plan: steps run when their needs are ready');
running.before.each((ctx) => {
  ctx.clients = [];
});
running.after.each(async (ctx) => {
  for (const c of ctx.clients.splice(0)) await c.close();
  await ctx.agent?.stop();
  ctx.agent = undefined;
});

running('metadata runs beside recognition; comparison starts only when recognition is done', async (ctx) => {
  const agent = (ctx.agent = await startTestAgent());
  let releaseRecognition: (() => void) | undefined;
  let comparisonAsked = false;
  ctx.clients.push(
    await startHandler(agent, 'recognition', async () => {
      await new Promise<void>((r) => (releaseRecognition = r));
      return recognitionResult();
    }),
    await startHandler(agent, 'comparison', async (cmd) => {
      comparisonAsked = true;
      assert.ok(cmd.data.previous.recognition, 'comparison gets the recognition result');
      return (await import('./support/fixtures.js')).comparisonResult();
    }),
    await startHandler(agent, 'metadata'),
  );
  const obs = await observer(agent);
  const up = await intake(agent);
  ctx.clients.push(obs.bus, up);
  const d = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
  await obs.waitFor((ev) => ofType(ev, 'metadata.sorted', d.analysisId).length === 1);
  assert.ok(releaseRecognition, 'recognition is running');
  assert.is(comparisonAsked, false, 'comparison waits for recognition');
  const mid = agent.orchestrator.status(d.analysisId)!;
  assert.equal(mid.steps.map((s) => [s.step, s.status]), [['recognition', 'running'], ['comparison', 'pending'], ['metadata', 'completed']]);
  // QoS 1 redelivers: the finished parallel step's event twice more while recognition still runs changes nothing.
  const sorted = ofType(obs.events, 'metadata.sorted', d.analysisId)[0]!;
  const before = agent.orchestrator.stats.ignored.lateOrDuplicate;
  const metaBus = ctx.clients[2]!;
  await metaBus.republish(sorted);
  await metaBus.republish(sorted);
  await until(() => agent.orchestrator.stats.ignored.lateOrDuplicate === before + 2, 2000, 'duplicates ignored');
  assert.equal(agent.orchestrator.status(d.analysisId)!.steps.map((s) => [s.step, s.status, s.attempts]), [['recognition', 'running', 1], ['comparison', 'pending', 0], ['metadata', 'completed', 1]]);
  releaseRecognition!();
  await obs.waitFor((ev) => terminal(ev, d.analysisId).length === 1);
  assert.is(terminal(obs.events, d.analysisId)[0]!.type, 'analysis.completed');
  assert.ok(comparisonAsked);
  assert.is(terminal(obs.events, d.analysisId).length, 1);
});

running('a step others need fails the analysis at once with its reason; the answer of a step still in flight is then ignored', async (ctx) => {
  const agent = (ctx.agent = await startTestAgent());
  let releaseMetadata: (() => void) | undefined;
  ctx.clients.push(
    await startHandler(agent, 'recognition', async () => {
      throw new StepError('MODEL_NOT_FOUND', 'the model is not installed; install it and restart the agent', false);
    }),
    await startHandler(agent, 'comparison'),
    await startHandler(agent, 'metadata', async () => {
      await new Promise<void>((r) => (releaseMetadata = r));
      return (await import('./support/fixtures.js')).metadataResult();
    }),
  );
  const obs = await observer(agent);
  const up = await intake(agent);
  ctx.clients.push(obs.bus, up);
  const d = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
  await obs.waitFor((ev) => terminal(ev, d.analysisId).length === 1);
  const f = terminal(obs.events, d.analysisId)[0]!;
  if (f.type !== 'analysis.failed') return assert.unreachable('expected analysis.failed');
  assert.is(f.data.failedStep, 'recognition');
  assert.is(f.data.reason.code, 'MODEL_NOT_FOUND');
  // Comparison needs recognition and never started; metadata was running (shared/src/step-status.ts).
  assert.equal(f.data.steps.map((s) => [s.step, s.status]), [['recognition', 'failed'], ['comparison', 'skipped'], ['metadata', 'cancelled']]);
  const ignoredBefore = agent.orchestrator.stats.ignored.unknownAnalysis;
  releaseMetadata!();
  await obs.waitFor((ev) => ofType(ev, 'metadata.sorted', d.analysisId).length === 1);
  await settle(50);
  assert.is(agent.orchestrator.stats.ignored.unknownAnalysis, ignoredBefore + 1, 'the late metadata answer is ignored');
  assert.is(terminal(obs.events, d.analysisId).length, 1, 'still one terminal event');
  assert.is(agent.orchestrator.instances().find((i) => i.handles.includes('analysis.metadata.request'))?.inflight, 0, 'the metadata instance is free again');
});

// ---------------------------------------------------------------------------
// A fourth step: a plan entry and the catalogue's `nameplate` entry, no orchestrator code.

running('a fourth step (nameplate, served by a test handler) runs from a plan entry alone, and its result arrives', async (ctx) => {
  const agent = (ctx.agent = await startTestAgent({ config: testConfig({ 'orchestrator.plan': { nameplate: { needs: [], timeoutMs: 5000 } } }) }));
  let previous: string[] | undefined;
  ctx.clients.push(
    await startHandler(agent, 'recognition'),
    await startHandler(agent, 'comparison'),
    await startHandler(agent, 'metadata'),
    await startHandler(agent, 'nameplate', async (cmd) => {
      previous = Object.keys(cmd.data.previous);
      return nameplateResult();
    }),
  );
  const obs = await observer(agent);
  const up = await intake(agent);
  ctx.clients.push(obs.bus, up);
  const d = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
  await obs.waitFor((ev) => terminal(ev, d.analysisId).length === 1);
  const started = ofType(obs.events, 'analysis.started', d.analysisId)[0]!;
  if (started.type !== 'analysis.started') return assert.unreachable();
  assert.equal(started.data.steps, ['recognition', 'comparison', 'metadata', 'nameplate']);
  assert.equal(started.data.plan?.[3], { step: 'nameplate', needs: [], optional: false });
  const done = terminal(obs.events, d.analysisId)[0]!;
  if (done.type !== 'analysis.completed') return assert.unreachable(`expected analysis.completed, got ${JSON.stringify(done.data)}`);
  assert.equal(agent.orchestrator.status(d.analysisId)?.results.nameplate, nameplateResult());
  assert.equal(previous, []);
  assert.is(done.data.steps.length, 4);
});

running('a failed optional step is reported and the analysis completes without it; health says what is missing', async (ctx) => {
  const agent = (ctx.agent = await startTestAgent({ config: testConfig({ 'orchestrator.plan': { nameplate: { optional: true, timeoutMs: 5000 } } }) }));
  const health = async () => (await inject(agent, { method: 'GET', url: '/api/v1/health' })).json<{ reasons: string[]; services: Record<string, { optional: boolean; up: boolean }> }>();
  ctx.clients.push(await startHandler(agent, 'recognition'), await startHandler(agent, 'comparison'), await startHandler(agent, 'metadata'));
  await until(() => agent.orchestrator.instances().length === 3);
  const h = await health();
  assert.equal(h.services['nameplate-service'], { step: 'nameplate', optional: true, inProcess: false, up: false, instances: [] } as never);
  assert.ok(h.reasons.includes('nameplate-service not running: analyses complete without the optional nameplate step'), h.reasons.join('; '));
  const reader = await startHandler(agent, 'nameplate', async () => {
    throw new StepError('IMAGE_DECODE_FAILED', 'the nameplate is unreadable: photograph it straight on, in focus', false);
  });
  ctx.clients.push(reader);
  const obs = await observer(agent);
  const up = await intake(agent);
  ctx.clients.push(obs.bus, up);
  const d = uploaded('gw-test');
  await up.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
  await obs.waitFor((ev) => terminal(ev, d.analysisId).length === 1);
  const done = terminal(obs.events, d.analysisId)[0]!;
  if (done.type !== 'analysis.completed') return assert.unreachable(`expected analysis.completed, got ${done.type}`);
  const np = done.data.steps.find((s) => s.step === 'nameplate')!;
  assert.is(np.status, 'failed');
  assert.is(np.optional, true);
  assert.is(np.error?.code, 'IMAGE_DECODE_FAILED');
  const results = agent.orchestrator.status(d.analysisId)!.results;
  assert.is(results.nameplate, undefined);
  assert.ok(results.recognition && results.comparison && results.metadata);
  assert.is(agent.orchestrator.status(d.analysisId)?.status, 'completed');
});

running.run();
