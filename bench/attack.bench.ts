/**
 * The four flood probes of SECURITY.md, each run against the product with its limits and with
 * the limits lifted (the same code, limits set out of reach), in one run:
 * - CONNECT size: 4 unauthenticated sockets announcing 250 MB CONNECTs to the agent's bus;
 * - GraphQL cost: 300 aliases of the machine list with thumbnails, at the relay;
 * - login rate: 400 wrong-secret logins at ~100/s while the real gateway logs in, at the relay;
 * - upload burst: 1,200 uploads at once to the agent (lifted: published straight to the bus,
 *   as the intake did before it reserved queue places).
 * Printed per probe: RSS growth, the main event loop's delay (p99 and max) during the probe,
 * and what happened. In-process: RSS is this process's (agent or relay plus the attacker), and
 * memory freed by one probe is reused by the next, so later probes understate their growth.
 * `TU_BENCH_BURST` sets the upload burst (default 1200).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { silentLogger, type AnyEvent } from '@tu/shared';
import { startBroker } from '@tu/agent';
import type { Relay } from '@tu/relay';
import { recognitionResult, uploaded } from '../test/support/fixtures.js';
import { photoBytes } from '../test/support/data.js';
import { inject, intake, observer, startHandler, startTestAgent, testConfig } from '../test/support/harness.js';
import { addGateway, analysisFlow, connectGateway, publishEvent, startTestRelay, tokenFor } from '../test/support/relay.js';
import { floodConnectTcp, loginFrom } from '../test/support/attack.js';
import { fmt, table } from './stats.js';

interface Probe {
  probe: string;
  limits: 'on' | 'lifted';
  rssMb: number;
  p99Ms: number;
  maxMs: number;
  outcome: string;
}

const rssMb = () => process.memoryUsage.rss() / 1048576;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` while watching RSS and the event loop. */
async function watch(probe: string, limits: Probe['limits'], fn: () => Promise<string>): Promise<Probe> {
  globalThis.gc?.();
  await sleep(100);
  const before = rssMb();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb())), 20);
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const outcome = await fn();
  h.disable();
  clearInterval(sampler);
  peak = Math.max(peak, rssMb());
  return { probe, limits, rssMb: peak - before, p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6, outcome };
}

async function connectProbe(limits: Probe['limits']): Promise<Probe> {
  const lifted = { maxConnectBytes: 512 * 1048576, maxPacketBytes: 512 * 1048576, maxPendingConnects: 1e6, connectBurstPerAddress: 1e6, connectsPerSecondPerAddress: 1e6 };
  const broker = await startBroker({ gatewayId: 'gw-bench', secret: 'bench-secret-bench-secret-bench-secret-0', logger: silentLogger(), tcp: { host: '127.0.0.1', port: 0 }, maxPayloadBytes: 256 * 1024, ...(limits === 'lifted' ? { admission: lifted } : {}) });
  try {
    return await watch('CONNECT 4 × 250 MB (agent bus)', limits, async () => {
      const sent = await Promise.all([0, 1, 2, 3].map(() => floodConnectTcp(broker.address!.port, 250 * 1048576, 64 * 1048576)));
      return `${fmt(sent.reduce((a, b) => a + b, 0) / 1048576, 0)} MB taken in before the cut; ${broker.stats.admission.refusedOversize} cut at the header`;
    });
  } finally {
    await broker.close();
  }
}

const LIFTED_RELAY = {
  'graphql.maxQueryBytes': 1024 * 1024,
  'graphql.maxDepth': 50,
  'graphql.maxAliases': 1000,
  'graphql.maxCost': 1_000_000,
  'graphql.maxResponseBytes': 256 * 1048576,
  'ingress.limits.failedLoginBurst': 1_000_000,
  'ingress.limits.connectBurstPerAddress': 1_000_000,
  'ingress.limits.connectsPerSecondPerAddress': 1_000_000,
};

async function withRelay<T>(limits: Probe['limits'], fn: (relay: Relay) => Promise<T>): Promise<T> {
  const relay = await startTestRelay(limits === 'lifted' ? { overrides: LIFTED_RELAY } : {});
  try {
    return await fn(relay);
  } finally {
    await relay.stop();
  }
}

async function graphqlProbe(limits: Probe['limits']): Promise<Probe> {
  return withRelay(limits, async (relay) => {
    const gw = await connectGateway(relay.mqttUrl, 'gw-q', await addGateway(relay, 'gw-q', 'acme'));
    const thumbnail = Buffer.alloc(15_000, 7).toString('base64');
    for (let i = 0; i < 10; i++) for (const e of analysisFlow('gw-q', { machineId: `m-${i}`, thumbnail })) await publishEvent(gw, 'gw-q', e);
    gw.end(true);
    const token = await tokenFor('acme');
    const query = `{ ${Array.from({ length: 300 }, (_, i) => `a${i}: machines(first: 100) { nodes { id latestThumbnail } }`).join(' ')} }`;
    return watch('GraphQL 300 aliases (relay)', limits, async () => {
      const t0 = performance.now();
      const res = await fetch(`${relay.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query }) });
      const body = await res.text();
      return `${res.status}, ${fmt(body.length / 1048576, 1)} MB answer in ${fmt(performance.now() - t0, 0)} ms`;
    });
  });
}

async function loginProbe(limits: Probe['limits']): Promise<Probe> {
  return withRelay(limits, async (relay) => {
    const secret = await addGateway(relay, 'gw-guessed', 'acme');
    const logins = relay.deps.ingress()!.logins!;
    return watch('400 wrong logins at 100/s (relay)', limits, async () => {
      const guesses: Promise<unknown>[] = [];
      let real: Promise<{ ok: boolean; ms: number }> | undefined;
      for (let i = 0; i < 400; i++) {
        guesses.push(loginFrom(relay.mqttUrl, '127.0.0.2', 'gw-guessed', `wrong-${i}-0123456789abcdef`));
        if (i === 200) real = loginFrom(relay.mqttUrl, '127.0.0.3', 'gw-guessed', secret);
        if (i % 10 === 9) await sleep(100);
      }
      const r = await real!;
      await Promise.all(guesses);
      return `real gateway ${r.ok ? 'in' : 'refused'} after ${fmt(r.ms, 0)} ms; ${logins.checked} secrets checked, ${logins.throttled} refused unchecked`;
    });
  });
}

async function burstProbe(limits: Probe['limits']): Promise<Probe> {
  const n = Number(process.env.TU_BENCH_BURST ?? 1200);
  const agent = await startTestAgent({ config: testConfig({ 'orchestrator.durability': 'full' }) });
  const clients = [
    await startHandler(agent, 'recognition', async () => (await sleep(5), recognitionResult())),
    await startHandler(agent, 'comparison'),
    await startHandler(agent, 'metadata'),
  ];
  const obs = await observer(agent);
  try {
    const photo = photoBytes('forklift/imagenet_n03384352_forklift.jpg');
    return await watch(`upload burst of ${n} (agent)`, limits, async () => {
      let ids: string[];
      let refused = 0;
      if (limits === 'on') {
        const answers = await Promise.all(Array.from({ length: n }, () => inject(agent, { method: 'POST', url: '/api/v1/images', payload: photo, headers: { 'content-type': 'image/jpeg' } })));
        ids = answers.filter((r) => r.statusCode === 202).map((r) => (r.json() as { analysisId: string }).analysisId);
        refused = answers.filter((r) => r.statusCode === 429).length;
      } else {
        // Before the door: every upload was accepted and published; the orchestrator then failed the overflow.
        const up = await intake(agent);
        clients.push(up);
        ids = [];
        await Promise.all(
          Array.from({ length: n }, () => {
            const d = uploaded('gw-test');
            ids.push(d.analysisId);
            return up.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
          }),
        );
      }
      const wanted = new Set(ids);
      const ended = (ev: AnyEvent[]) => ev.filter((e) => (e.type === 'analysis.completed' || e.type === 'analysis.failed') && wanted.has(e.subject ?? ''));
      await obs.waitFor((ev) => ended(ev).length >= ids.length, 300_000);
      const dropped = ended(obs.events).filter((e) => e.type === 'analysis.failed').length;
      return `${ids.length} accepted, ${refused} refused with 429, ${dropped} accepted and then dropped (QUEUE_FULL)`;
    });
  } finally {
    for (const c of [...clients, obs.bus]) await c.close();
    await agent.stop();
  }
}

export default async function attack(): Promise<void> {
  const rows: Probe[] = [];
  // One process: memory a probe leaves behind is reused by the next one and hides its growth.
  // So the probe that grows the most when lifted (CONNECT) goes first, and each probe runs with
  // its limits on before they are lifted.
  for (const probe of [connectProbe, loginProbe, graphqlProbe, burstProbe]) {
    rows.push(await probe('on'));
    rows.push(await probe('lifted'));
  }
  console.log(
    table([
      ['probe', 'limits', 'RSS growth MB', 'loop delay p99 ms', 'loop delay max ms', 'what happened'],
      ...rows.map((r) => [r.probe, r.limits, fmt(r.rssMb, 0), fmt(r.p99Ms, 0), fmt(r.maxMs, 0), r.outcome]),
    ]),
  );
}
