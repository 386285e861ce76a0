/**
 * Uplink outbox: append rate (group commit, durability full and normal) and drain rate
 * after an outage of 10,000 events to a local aedes relay (TCP_NODELAY), per inflight window.
 */
import path from 'node:path';
import { silentLogger, systemClock, BusClient } from '@tu/shared';
import { derivePassword, startAgent, Outbox } from '@tu/agent';
import { uploaded } from '../test/support/fixtures.js';
import { testConfig, tmpDir, until } from '../test/support/harness.js';
import { TestRelay } from '../test/support/relay-ingress.js';
import { freePort } from '../test/support/processes.js';

const N = 10_000;
const GW = 'gw-bench';
const SECRET = 'bench-gateway-secret';

async function appendRate(durability: 'full' | 'normal'): Promise<{ rate: number; commits: number; p50: number; p99: number }> {
  const ob = await Outbox.open({
    file: path.join(tmpDir('tu-bench-outbox-'), 'outbox.sqlite'),
    durability,
    maxEvents: 1_000_000,
    maxBytes: 1024 * 1024 * 1024,
    maxAgeMs: 86_400_000,
    whenFull: 'drop-oldest',
    clock: systemClock,
    logger: silentLogger(),
  });
  const payload = JSON.stringify({ specversion: '1.0', data: { pad: 'x'.repeat(700) } });
  ob.append({ id: 'warm-up', type: 'analysis.started' }, payload); // worker thread started
  await ob.flush();
  const c0 = ob.stats.commits;
  const t0 = performance.now();
  // Events arrive in bursts from the bus: 100 per event-loop turn.
  for (let i = 0; i < N; i += 100) {
    for (let j = 0; j < 100; j++) ob.append({ id: `e${i + j}`, type: 'analysis.started' }, payload);
    await new Promise((r) => setImmediate(r));
  }
  await ob.flush();
  const rate = N / ((performance.now() - t0) / 1000);
  const commits = ob.stats.commits - c0;
  // The durability window for one event on a quiet bus: append -> on disk.
  const lat: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    const r = ob.append({ id: `l${i}`, type: 'analysis.started' }, payload);
    if (r.accepted) await r.committed;
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  await ob.close();
  return { rate, commits, p50: lat[100]!, p99: lat[198]! };
}

async function drainRate(inflight: number): Promise<{ rate: number; queued: number }> {
  const relay = new TestRelay({ [GW]: SECRET });
  const port = await freePort();
  const agent = await startAgent(
    testConfig({ gatewayId: GW, 'uplink.url': `mqtt://127.0.0.1:${port}`, 'uplink.password': SECRET, 'uplink.inflight': inflight, 'uplink.reconnect.initialDelayMs': 1000, 'uplink.reconnect.maxDelayMs': 1000, 'uplink.reconnect.jitter': 0 }),
    { logger: silentLogger() },
  );
  const bus = await BusClient.connect({
    gatewayId: GW,
    service: 'intake',
    instanceId: 'intake:bench',
    username: 'intake',
    password: derivePassword(agent.busIdentity.secret, 'intake'),
    transport: agent.busIdentity.transport,
    logger: silentLogger(),
  });
  // 10,000 real events on the local bus while the relay is down (orchestrator queue ignores them: maxQueue).
  for (let i = 0; i < N; i += 200) await Promise.all(Array.from({ length: 200 }, () => { const d = uploaded(GW); return bus.publishEvent('tu.image.uploaded', d, { subject: d.analysisId }); }));
  const ob = agent.uplink.outbox!;
  await until(() => ob.stats.depth >= N, 30_000, 'outbox to fill');
  await ob.flush();
  const queued = ob.stats.depth;
  await relay.start(port);
  await until(() => agent.uplink.forwarder!.state === 'online', 5000, 'reconnect');
  const t0 = performance.now();
  await until(() => ob.stats.depth === 0, 60_000, 'outbox to drain');
  const rate = queued / ((performance.now() - t0 - 0) / 1000);
  await bus.close();
  await agent.stop();
  await relay.stop();
  return { rate, queued };
}

export default async function bench(): Promise<void> {
  const rows: string[][] = [];
  for (const d of ['full', 'normal'] as const) {
    const r = await appendRate(d);
    rows.push([`outbox append (${d}, ~800 B events)`, `${Math.round(r.rate)} events/s`, `${N} events in ${r.commits} group commits`]);
    rows.push([`outbox commit latency (${d}), single event`, `p50 ${r.p50.toFixed(2)} ms`, `p99 ${r.p99.toFixed(2)} ms (the crash window on a quiet bus)`]);
  }
  for (const w of [1, 16, 64]) {
    const r = await drainRate(w);
    rows.push([`drain after outage, inflight ${w}`, `${Math.round(r.rate)} events/s`, `${r.queued} queued (incl. orchestrator events); timed from the reconnect`]);
  }
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), 8));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  console.log(line(['measure', 'rate', 'notes']));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const r of rows) console.log(line(r));
}
