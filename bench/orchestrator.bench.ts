/**
 * Orchestrator throughput and per-analysis overhead through the full command/event
 * choreography, handlers answering at once, beside raw mqtt.js request/response round
 * trips through the same broker, measured in the same run.
 */
import { MqttClient } from 'mqtt';
import { serveStep, silentLogger, STEPS, topics, type AnyEvent, type BusClient, type StepName, type Transport } from '@tu/shared';
import { connectService, derivePassword, startAgent, type Agent } from '@tu/agent';
import { loadAgentConfig } from '@tu/firmware-config';
import { comparisonResult, metadataResult, nameplateResult, recognitionResult, uploaded } from '../test/support/fixtures.js';
import { tmpDir } from '../test/support/harness.js';
import { fmt, median, quantile, table } from './stats.js';
import { recordAim } from './aims.js';

/**
 * Results as the real services put them on the bus: the recognition result carries a reference
 * to its embedding (docs/messages.md), not the packed vector the fixture holds for the relay.
 */
const RESULTS = {
  recognition: { ...recognitionResult(), embedding: { ref: { sha256: 'a'.repeat(64), model: 'mobilenet_v2_100_224_quant' }, dim: 1280, dtype: 'float32' as const } },
  comparison: comparisonResult(),
  metadata: metadataResult(),
  nameplate: nameplateResult(),
};

async function setup(durability: 'full' | 'normal', transport: 'in-process' | 'tcp'): Promise<{ agent: Agent; clients: BusClient[]; intake: BusClient; done: Map<string, (e: AnyEvent) => void>; t: () => Transport }> {
  const config = loadAgentConfig({
    env: {},
    overrides: { gatewayId: 'gw-bench', dataDir: tmpDir('tu-bench-'), 'broker.port': 0, 'bus.secret': 'bench-secret-bench-secret-bench-secret-01', 'orchestrator.durability': durability, 'orchestrator.maxConcurrent': 1000, 'orchestrator.maxQueue': 100000, 'http.port': 0, 'http.host': '127.0.0.1', 'services.vision': false, 'services.comparison': false, 'services.metadata': false },
  });
  const agent = await startAgent(config, { logger: silentLogger() });
  const t = (): Transport => (transport === 'tcp' ? { kind: 'tcp', host: '127.0.0.1', port: agent.broker.address!.port } : agent.busIdentity.transport);
  const id = { ...agent.busIdentity, transport: t() };
  const clients: BusClient[] = [];
  for (const step of agent.config.orchestrator.plan.map((p) => p.step)) {
    const bus = await connectService(id, STEPS[step].service, { handles: [STEPS[step].command] });
    await serveStep(bus, step, async () => RESULTS[step] as never);
    await bus.markReady();
    clients.push(bus);
  }
  const intake = await connectService(id, 'intake');
  const done = new Map<string, (e: AnyEvent) => void>();
  await intake.onEvents(['analysis.completed', 'analysis.failed'], (e) => done.get(e.subject)?.(e));
  clients.push(intake);
  while (agent.orchestrator.instances().length < agent.config.orchestrator.plan.length) await new Promise((r) => setTimeout(r, 5));
  return { agent, clients, intake, done, t };
}

function oneAnalysis(ctx: { intake: BusClient; done: Map<string, (e: AnyEvent) => void> }): Promise<number> {
  const d = uploaded('gw-bench');
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    ctx.done.set(d.analysisId, (e) => {
      ctx.done.delete(d.analysisId);
      if (e.type !== 'analysis.completed') reject(new Error(`analysis failed: ${JSON.stringify(e.data)}`));
      else resolve(performance.now() - t0);
    });
    ctx.intake.publishEvent('tu.image.uploaded', d, { subject: d.analysisId }).catch(reject);
  });
}

/** Steps on the plan's longest chain of needs (2 for the default plan). */
function longestChain(plan: readonly { step: StepName; needs: readonly StepName[] }[]): number {
  const depth = new Map<StepName, number>();
  for (const p of plan) depth.set(p.step, 1 + Math.max(0, ...p.needs.map((n) => depth.get(n) ?? 0)));
  return Math.max(...depth.values());
}

/** Raw mqtt.js request/response through the same broker and topics, no validation, no orchestration. */
async function rawRoundTrips(agent: Agent, t: Transport, n: number): Promise<number[]> {
  const { openTransport } = await import('@tu/shared');
  const mk = (user: string, clientId: string) =>
    new Promise<MqttClient>((resolve, reject) => {
      const c = new MqttClient(() => openTransport(t), { protocolVersion: 4, clientId, username: user, password: derivePassword(agent.busIdentity.secret, user), reconnectPeriod: 0 });
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });
  const req = await mk('svc-analysis-orchestrator', 'svc-analysis-orchestrator:raw-req');
  const res = await mk('metadata-service', 'metadata-service:raw-res');
  const cmdTopic = topics.command('gw-bench', 'analysis.metadata.request', 'metadata-service:raw-res');
  // The answer goes to a topic no one else subscribes to (the responder's dead-letter topic), so the baseline loads nothing but the broker.
  const evtTopic = topics.deadLetter('gw-bench', 'metadata-service');
  await res.subscribeAsync(cmdTopic, { qos: 1 });
  await req.subscribeAsync(evtTopic, { qos: 1 });
  const payload = JSON.stringify({ specversion: '1.0', id: 'x', source: '/gateways/gw-bench/metadata-service', type: 'metadata.sorted', data: { result: RESULTS.metadata } });
  res.on('message', (_t, p) => res.publish(evtTopic, p, { qos: 1 }));
  const rtts: number[] = [];
  let pending: (() => void) | undefined;
  req.on('message', () => pending?.());
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise<void>((r) => {
      pending = r;
      req.publish(cmdTopic, payload, { qos: 1 });
    });
    rtts.push(performance.now() - t0);
  }
  await req.endAsync();
  await res.endAsync();
  return rtts;
}

async function measure(durability: 'full' | 'normal', transport: 'in-process' | 'tcp') {
  const ctx = await setup(durability, transport);
  // warm-up
  for (let i = 0; i < 200; i++) await oneAnalysis(ctx);
  const raw = await rawRoundTrips(ctx.agent, ctx.t(), 2000);
  const lat: number[] = [];
  for (let i = 0; i < 1000; i++) lat.push(await oneAnalysis(ctx));
  // Throughput: keep a window of analyses in flight.
  const N = 10_000;
  const WINDOW = 400;
  let started = 0;
  let finished = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const next = () => {
      while (started < N && started - finished < WINDOW) {
        started++;
        oneAnalysis(ctx).then(() => {
          finished++;
          if (finished === N) resolve();
          else next();
        }, reject);
      }
    };
    next();
  });
  const secs = (performance.now() - t0) / 1000;
  const rss = process.memoryUsage().rss / 1024 / 1024;
  const rejected = ctx.agent.orchestratorBus.stats.rejected;
  for (const c of ctx.clients) await c.close();
  await ctx.agent.stop();
  // One analysis at a time takes the plan's longest chain of steps (recognition → comparison;
  // metadata runs beside it) as command/event round trips, plus two one-way hops (upload in,
  // completion out) ≈ one more round trip.
  const chain = longestChain(ctx.agent.config.orchestrator.plan);
  const perStep = median(lat) / (chain + 1);
  return {
    chain, durability, transport, rate: N / secs, rawP50: median(raw), rawP99: quantile(raw, 0.99), e2eP50: median(lat), e2eP99: quantile(lat, 0.99), perStep, ratio: perStep / median(raw), rss, rejected };
}

export default async function orchestratorBench(): Promise<void> {
  const rows: (string | number)[][] = [
    ['durability', 'transport', 'analyses/s', 'raw RTT p50 ms', 'raw RTT p99', 'analysis p50 ms', 'analysis p99', 'per step ms', 'per step / raw RTT', 'RSS MB'],
  ];
  const results: Awaited<ReturnType<typeof measure>>[] = [];
  for (const [d, t] of [
    ['full', 'in-process'],
    ['full', 'tcp'],
    ['normal', 'in-process'],
  ] as const) {
    const r = await measure(d, t);
    if (r.rejected) throw new Error(`${r.rejected} messages rejected during the bench`);
    rows.push([r.durability, r.transport, fmt(r.rate, 0), fmt(r.rawP50, 3), fmt(r.rawP99, 3), fmt(r.e2eP50, 3), fmt(r.e2eP99, 3), fmt(r.perStep, 3), fmt(r.ratio, 2), fmt(r.rss, 0)]);
    results.push(r);
  }
  console.log(table(rows));
  for (const r of results.filter((x) => x.durability === 'full')) {
    console.log(recordAim({ figure: `analyses/s, instant handlers, durable (full), ${r.transport}`, value: r.rate, unit: 'analyses/s', aim: 2000, better: 'higher' }));
    console.log(recordAim({ figure: `per step ÷ raw mqtt.js QoS 1 RTT (full, ${r.transport})`, value: r.ratio, unit: '×', aim: 2, better: 'lower' }));
  }
  console.log(
    'analyses/s: 10,000 analyses, 400 in flight, the default plan (3 steps; metadata beside recognition, comparison after it), handlers answering at once, all in one process.\n' +
      'analysis p50/p99: one analysis at a time, upload published → analysis.completed received (includes the fsync of the terminal state with durability=full).\n' +
      `per step = analysis p50 / ${(results[0]?.chain ?? 2) + 1} (the plan's longest chain, ${results[0]?.chain ?? 2} command/event round trips, + the upload and completion hops); raw RTT = mqtt.js QoS 1 publish → echo → receive on the same broker and topics.`,
  );
}
