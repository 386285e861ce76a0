import fs from 'node:fs';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { z } from 'zod';
import { issueToken } from '@tu/relay';
import { tmpDir } from '../../test/support/harness.js';
import { deleteRedisKeys, dropPgSchema, PG_BASE } from '../../test/support/relay.js';
import { quantile } from '../stats.js';
import type { FleetBroker } from './broker.js';
import { checkFleet, rowWrites, settle, writeMix, type CheckResult } from './checker.js';
import { allocateRelays, commandCpuSeconds, cpuSeconds, pidsCpu, type RelayInstance } from './relays.js';
import { writeFleetRegistry } from './registry.js';
import { Simulator } from './simulator.js';
import { Subscribers } from './subscribers.js';

/** What one fleet run does (TU_FLEET_* in the bench; the test passes its own). */
export const fleetOptionsSchema = z.object({
  gateways: z.number().int().min(1).max(20_000),
  /** Relay instances (competing consumers with a broker of their own; behind a load balancer when embedded). */
  relays: z.number().int().min(1).max(8),
  seconds: z.number().min(5).max(600),
  /** Offered fleet-wide events/s, one stage each, raised in turn over the run (equal shares of `seconds`). */
  rates: z.array(z.number().int().min(6).max(200_000)).min(1).max(20),
  subscribers: z.number().int().min(0).max(1000),
  /** Gateways each subscriber watches (one subscription each, on its one connection). */
  watchPerSubscriber: z.number().int().min(1).max(100).default(1),
  /** Kill one relay instance (SIGKILL) at this fraction of the run, restart it 5 s later. */
  killRelayAt: z.number().min(0).max(1).optional(),
  /** Kill one broker node at this fraction of the run, restart it 5 s later (brokers with nodes only). */
  killBrokerAt: z.number().min(0).max(1).optional(),
  waveSize: z.number().int().min(1).max(5000).default(200),
  /** Load before the measured run, at the first stage's rate (its figures are printed, not counted). */
  warmupSeconds: z.number().min(0).max(60).default(0),
  redisDb: z.number().int().min(0).max(15).default(11),
});
export type FleetOptions = z.input<typeof fleetOptionsSchema>;

export interface StageFigures {
  offered: number;
  /** Events the simulator could place (a gateway with a full outbox skips its turn). */
  sentPerS: number;
  ackedPerS: number;
  /** Relay CPU milliseconds per acknowledged event. */
  relayCpuMsPerEvent: number;
  /** CPU of every `postgres` process on the machine (other users of the server included). */
  databaseCpu: number;
  p99Ms: number;
  relayCpu: number;
  brokerCpu: number;
  simCpu: number;
  machineBusy: number;
  queueDepth: number;
  /** Events stored per storage batch (one transaction), over the relays. */
  eventsPerBatch: number;
  /** Event rows inserted and gateway presence rows updated per second (pg_stat_user_tables). */
  eventRowsPerS: number;
  presenceUpdatesPerS: number;
  /** Questions of the broker to the relays (auth backend) per second; 0 when it asks none. */
  authPerS: number;
}

export interface FleetResult {
  gateways: number;
  connected: number;
  connectMs: number;
  stages: StageFigures[];
  /**
   * Sustained ingest: the highest acknowledged rate of a stage that kept up with what was offered
   * (`keptUp`; bench/fleet.bench.ts calls the first stage that did not the saturation). A
   * stage that fell behind acknowledges for a while at a rate it cannot hold: its queues grow.
   * When no stage kept up, the best acknowledged rate (`keptUp` false).
   */
  eventsPerS: number;
  keptUp: boolean;
  p50Ms: number;
  p99Ms: number;
  p99SteadyMs: number;
  /** Send → acknowledgement (after commit), whole run. */
  ackP50Ms: number;
  ackP99Ms: number;
  latencySamples: number;
  subscribers: { subscribers: number; watchPerSubscriber: number; active: number; received: number; duplicates: number; reconnects: number };
  check: CheckResult;
  rssKb: { index: number; nowKb: number; peakKb: number }[];
  sim: Simulator['stats'];
  drained: boolean;
  faults: string[];
  rejected: number;
}

/** The summary line a check outside the project parses: keep it exactly so. */
export const summaryLine = (r: FleetResult): string =>
  `fleet: gateways=${r.gateways} events_per_s=${Math.round(r.eventsPerS)} p99_ms=${Math.round(r.p99Ms)} lost=${r.check.lost} duplicated=${r.check.duplicated} out_of_order=${r.check.outOfOrder}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Busy fraction of the whole machine since `prev` (/proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total };
}

/** Several series of one relay's /metrics, read in one request (each summed over its labels; 0 when the relay is down). */
async function metrics(r: RelayInstance, names: readonly string[]): Promise<number[]> {
  if (r.pid === undefined) return names.map(() => 0);
  try {
    const lines = (await (await fetch(`${r.url}/metrics`, { signal: AbortSignal.timeout(2000) })).text()).split('\n');
    return names.map((name) => lines.filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.split(' ').at(-1)), 0));
  } catch {
    return names.map(() => 0);
  }
}
const metric = async (r: RelayInstance, name: string): Promise<number> => (await metrics(r, [name]))[0]!;

/** Each relay's counters, to take a stage's difference with `counterDeltas`. */
const counters = (relays: readonly RelayInstance[], names: readonly string[]): Promise<number[][]> => Promise.all(relays.map((r) => metrics(r, names)));
/** Per relay; a relay restarted meanwhile counts from 0 again. */
const perRelayDeltas = (before: number[][], after: number[][]): number[][] =>
  after.map((a, i) => a.map((v, k) => (v >= (before[i]?.[k] ?? 0) ? v - (before[i]?.[k] ?? 0) : v)));
/** Summed over the relays. */
const counterDeltas = (before: number[][], after: number[][]): number[] =>
  perRelayDeltas(before, after).reduce((sum, d) => sum.map((s, k) => s + d[k]!), after[0]!.map(() => 0));
/** Stored events and batches (counters), then the queue depth (a gauge: read, not differenced). */
const BATCH_COUNTERS = ['tu_relay_events_stored_total', 'tu_relay_storage_batches_total'] as const;
const STAGE_END_SERIES = [...BATCH_COUNTERS, 'tu_relay_storage_queue_depth'] as const;

/** A stage kept up when it acknowledged at least this share of its offered rate ... */
export const KEPT_UP = 0.9;
/**
 * ... and ended with less than a second of its offered events waiting for storage: a stage that
 * drains an earlier backlog can acknowledge its share while new events wait behind a full queue
 * (seen before this rule: 5,636 acknowledged a second with 20,000 waiting).
 */
export const keptUp = (s: StageFigures): boolean => s.ackedPerS >= KEPT_UP * s.offered && s.queueDepth <= s.offered;

function sustained(stages: readonly StageFigures[]): { eventsPerS: number; keptUp: boolean } {
  const kept = stages.filter(keptUp);
  const pool = kept.length ? kept : stages;
  // A stage after one that fell behind acknowledges its backlog too: it shows that the relays
  // kept up with what was sent, not that they could take more, so it counts at most what was sent.
  return { eventsPerS: Math.max(0, ...pool.map((s) => Math.min(s.ackedPerS, s.sentPerS))), keptUp: kept.length > 0 };
}

/** Where the whole run's p99 comes from: the seconds of the run (from the load's start) holding deliveries at or above it, most first. */
function aboveP99BySecond(samples: readonly { at: number; ms: number }[], start: number): string {
  if (samples.length === 0) return '';
  const p99 = quantile(samples.map((x) => x.ms), 0.99);
  const bySecond = new Map<number, number>();
  for (const x of samples) {
    if (x.ms < p99) continue;
    const sec = Math.floor((x.at - start) / 1000);
    bySecond.set(sec, (bySecond.get(sec) ?? 0) + 1);
  }
  return [...bySecond]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, 8)
    .map(([sec, n]) => `${n} in s${sec}`)
    .join(', ');
}

export async function runFleet(input: FleetOptions, broker: FleetBroker, log: (line: string) => void = console.log): Promise<FleetResult> {
  const o = fleetOptionsSchema.parse(input);
  const dir = tmpDir('tu-fleet-');
  const tag = randomBytes(4).toString('hex');
  const tenant = `fleet-${tag}`;
  const schema = `tu_fleet_${tag}`;
  const redisPrefix = `tu:fleet:${tag}:`;
  const pgUrl = `${PG_BASE}?schema=${schema}`;
  const jwtSecret = randomBytes(32).toString('hex');
  const { file: registryFile, gateways } = await writeFleetRegistry(dir, tenant, `fl${tag}`, o.gateways);
  const relays = await allocateRelays(o.relays, dir, (i) => ({
    config: {
      ...broker.relayConfig(i),
      // The 200 subscribers connect at once from one address (loopback); the relay lets 50 sockets
      // per address wait for their connection_init (relay/src/graphql/ws-guard.ts), so on a slow
      // host a quarter of them were turned away and retried, and the run measured 150-184 of them.
      // Dashboards of a deployment come from many addresses.
      graphql: { websocket: { maxPendingPerAddress: 10_000 } },
    },
    env: {
      ...broker.relayEnv(i),
      TU_RELAY_STORAGE_URL: pgUrl,
      TU_RELAY_JWT_SECRET: jwtSecret,
      TU_RELAY_REDIS_URL: `redis://127.0.0.1:6379/${o.redisDb}`,
      // This run's keys only (presence hashes have no expiry): deleted after the run.
      TU_RELAY_REDIS_KEY_PREFIX: redisPrefix,
      // Only the first instance imports the registry (started alone, so no two imports race).
      ...(i === 0 ? { TU_RELAY_REGISTRY_FILE: registryFile } : {}),
    },
  }));
  let sim: Simulator | undefined;
  let subs: Subscribers | undefined;
  const faults: string[] = [];
  try {
    const t0 = Date.now();
    await broker.prepare(relays);
    await relays[0]!.start();
    await Promise.all(relays.slice(1).map((r) => r.start()));
    log(`${broker.kind} broker and ${o.relays} relay instance(s) up ( registry of ${o.gateways} gateways imported) in ${Date.now() - t0} ms`);
    const writesBefore = await rowWrites(PG_BASE, schema);

    sim = new Simulator({ gateways, urls: broker.gatewayUrls(relays), waveSize: o.waveSize, maxPendingPerGateway: 60 });
    // Bounded: 120 s, or 30 ms a gateway for a large fleet (logins go through the broker to the relays).
    const connectMs = await sim.connectAll(Math.max(120_000, o.gateways * 30));
    // Gateways refused in their wave retry on their own (bounded backoff): up to 60 s more.
    for (let i = 0; i < 600 && sim.connected < o.gateways; i++) await sleep(100);
    const connected = sim.connected;
    log(`${connected}/${o.gateways} gateways connected in ${connectMs} ms (waves of ${o.waveSize})`);

    const token = await issueToken({ secret: jwtSecret }, { sub: 'fleet-dashboard', tenant });
    // Watched gateways spread evenly over the fleet; subscriber i takes every `subscribers`-th of them.
    const watched = o.subscribers * o.watchPerSubscriber;
    const step = Math.max(1, Math.floor(o.gateways / Math.max(1, watched)));
    const watch = Array.from({ length: o.subscribers }, (_, i) => Array.from({ length: o.watchPerSubscriber }, (_, k) => gateways[((i + k * o.subscribers) * step) % o.gateways]!.id));
    subs = new Subscribers({ httpUrls: relays.map((r) => r.url), token, watch });
    await subs.start(30_000);
    log(`${subs.active}/${o.subscribers} graphql-ws subscribers connected, watching ${o.watchPerSubscriber} gateway(s) each`);
    if (o.warmupSeconds > 0) {
      // Freshly started relays run their hot paths (ingest, fan-out, GraphQL execution, SQL) cold
      // for about a second: events of the first second reached subscribers after 150–400 ms
      // (p50). A warm-up at the first stage's rate, reported on its own and counted in no figure.
      const w0 = Date.now();
      const sent0 = sim.stats.sent;
      await sim.offer(o.rates[0]!, o.warmupSeconds * 1000);
      await sim.drain(10_000);
      await subs.flush();
      const lat = subs.latencies.filter((x) => x.at >= w0).map((x) => x.ms);
      log(`warm-up: ${o.warmupSeconds} s at ${o.rates[0]} events/s offered, ${sim.stats.sent - sent0} sent, subscriber p50 ${lat.length ? quantile(lat, 0.5).toFixed(0) : '–'} ms, p99 ${lat.length ? quantile(lat, 0.99).toFixed(0) : '–'} ms (counted in no figure)`);
      subs.latencies.length = 0;
      sim.ackLatencies.length = 0;
    }

    // Faults on their own timers during the load.
    const runMs = o.seconds * 1000;
    const loadStart = Date.now();
    const timers: Promise<void>[] = [];
    const fault = (at: number | undefined, what: () => Promise<string>, back: () => Promise<void>) => {
      if (at === undefined) return;
      timers.push(
        (async () => {
          await sleep(at * runMs);
          const name = await what();
          faults.push(`${name} killed at ${((Date.now() - loadStart) / 1000).toFixed(1)} s`);
          await sleep(5000);
          // A restart may fail while the machine is saturated (e.g. a relay's first broker
          // question times out): tried 3 times, and a failure is reported, not thrown.
          for (let attempt = 1; attempt <= 3; attempt++) {
            try {
              await back();
              faults.push(`${name} back at ${((Date.now() - loadStart) / 1000).toFixed(1)} s${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
              return;
            } catch (err) {
              faults.push(`${name} restart attempt ${attempt} failed: ${(err as Error).message.split('\n').find((l) => l.includes('Error')) ?? (err as Error).message.slice(0, 200)}`);
              await sleep(3000);
            }
          }
        })(),
      );
    };
    const victim = relays[Math.min(1, relays.length - 1)]!;
    fault(o.killRelayAt, async () => (await victim.kill(), `relay instance ${victim.index} (SIGKILL)`), () => victim.start());
    const { killNode, restartNode } = broker;
    if (killNode && restartNode) fault(o.killBrokerAt, () => killNode.call(broker), () => restartNode.call(broker));
    const firstFault = Math.min(o.killRelayAt ?? 1, o.killBrokerAt ?? 1) * runMs + loadStart;

    const stages: StageFigures[] = [];
    const brokerCpu = pidsCpu(() => broker.pids());
    const stageMs = runMs / o.rates.length;
    for (const rate of o.rates) {
      const s0 = Date.now();
      const acked0 = sim.stats.acked;
      const sent0 = sim.stats.sent;
      const db0 = commandCpuSeconds('postgres');
      const mix0 = await writeMix(PG_BASE, schema);
      const auth0 = broker.authRequests?.() ?? 0;
      const batches0 = await counters(relays, BATCH_COUNTERS);
      const m0 = machineTicks();
      const sim0 = process.cpuUsage();
      const subsCpu0 = cpuSeconds(subs.pid);
      for (const r of relays) r.cpuSecondsDelta();
      brokerCpu.start();
      // Sample memory while loaded.
      const rssTimer = setInterval(() => relays.forEach((r) => r.rssKb()), 1000);
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      await sim.offer(rate, stageMs);
      clearInterval(rssTimer);
      loop.disable();
      const s1 = Date.now();
      const secs = (s1 - s0) / 1000;
      const m1 = machineTicks();
      const simUse = process.cpuUsage(sim0);
      // By arrival time: the subscribers' process reports every 100 ms (and now, asked).
      await subs.flush();
      const lat = subs.latencies.filter((x) => x.at >= s0 && x.at < s1).map((x) => x.ms);
      const mix1 = await writeMix(PG_BASE, schema);
      const relayCpus = relays.map((r) => r.cpuSecondsDelta() / secs);
      const relayCpu = relayCpus.reduce((a, b) => a + b, 0);
      const end = await counters(relays, STAGE_END_SERIES);
      const batches1 = end.map((v) => v.slice(0, BATCH_COUNTERS.length));
      const depths = end.map((v) => v[BATCH_COUNTERS.length]!);
      const [stored, batches] = counterDeltas(batches0, batches1);
      // How the load spread: a killed instance's gateways reconnect to the others and stay there.
      const perRelay = perRelayDeltas(batches0, batches1).map(
        ([st, b], i) => `r${i} ${((st ?? 0) / secs).toFixed(0)} stored/s, ${b ? ((st ?? 0) / b).toFixed(0) : '–'} per batch, queue ${depths[i]}, ${relayCpus[i]!.toFixed(2)} cores`,
      );
      const queueDepth = depths.reduce((a, b) => a + b, 0);
      const ackedPerS = (sim.stats.acked - acked0) / secs;
      const fig: StageFigures = {
        offered: rate,
        sentPerS: (sim.stats.sent - sent0) / secs,
        ackedPerS,
        relayCpuMsPerEvent: ackedPerS > 0 ? (relayCpu * 1000) / ackedPerS : NaN,
        databaseCpu: Math.max(0, commandCpuSeconds('postgres') - db0) / secs,
        p99Ms: lat.length ? quantile(lat, 0.99) : NaN,
        relayCpu,
        brokerCpu: brokerCpu.seconds() / secs,
        simCpu: ((simUse.user + simUse.system) / 1e6 + cpuSeconds(subs.pid) - subsCpu0) / secs,
        machineBusy: (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total),
        queueDepth,
        eventsPerBatch: batches ? stored! / batches : NaN,
        eventRowsPerS: (mix1.eventRows - mix0.eventRows) / secs,
        presenceUpdatesPerS: (mix1.presenceUpdates - mix0.presenceUpdates) / secs,
        authPerS: ((broker.authRequests?.() ?? 0) - auth0) / secs,
      };
      stages.push(fig);
      log(
        `stage ${rate} events/s offered: ${fig.sentPerS.toFixed(0)} sent/s, ${fig.ackedPerS.toFixed(0)} acked/s, p99 ${fig.p99Ms.toFixed(0)} ms; CPU cores: relays ${fig.relayCpu.toFixed(2)} (${fig.relayCpuMsPerEvent.toFixed(2)} ms/event), broker ${fig.brokerCpu.toFixed(2)}, postgres ${fig.databaseCpu.toFixed(2)}, simulator+subscribers ${fig.simCpu.toFixed(2)}; machine ${(fig.machineBusy * 100).toFixed(0)}% busy of ${os.cpus().length} cores; storage queue ${queueDepth}, ${fig.eventsPerBatch.toFixed(0)} events per batch; database: ${fig.eventRowsPerS.toFixed(0)} event rows/s, ${fig.presenceUpdatesPerS.toFixed(0)} presence updates/s; broker → relay auth requests ${fig.authPerS.toFixed(0)}/s`,
      );
      log(`  per relay: ${perRelay.join('; ')}`);
      log(`  simulator's process: event-loop delay p50 ${(loop.percentile(50) / 1e6).toFixed(0)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms, max ${(loop.max / 1e6).toFixed(0)} ms`);
    }
    await Promise.all(timers);
    const drained = await sim.drain(30_000);
    // With a broker of its own, a PUBACK means "in the quorum queue" and the relays may still be
    // storing the backlog (acknowledged or not: a count of stored ≥ acknowledged says nothing about
    // which): wait (bounded) until every created event is stored, or none more was for 20 s.
    const settled = await settle(PG_BASE, schema, tenant, sim.stats.sent, { maxMs: 180_000, stallMs: 20_000 });
    log(`outboxes ${drained ? 'empty' : 'NOT empty'}; stored ${settled.stored} of ${sim.stats.sent} created (${sim.stats.acked} acknowledged) after ${(settled.ms / 1000).toFixed(1)} s`);
    const rejected = (await Promise.all(relays.map((r) => metric(r, 'tu_relay_events_rejected_total')))).reduce((a, b) => a + b, 0);
    const rssKb = relays.map((r) => ({ index: r.index, nowKb: r.rssKb(), peakKb: r.peakRssKb }));
    await subs.flush();
    const all = subs.latencies.map((x) => x.ms);
    log(`deliveries at or above the whole run's p99, by second of the run: ${aboveP99BySecond(subs.latencies, loadStart) || 'none'} (faults: ${faults.join('; ') || 'none'})`);
    const steady = subs.latencies.filter((x) => x.at < firstFault).map((x) => x.ms);
    const subStats = { subscribers: o.subscribers, watchPerSubscriber: o.watchPerSubscriber, ...subs.stats };
    await subs.close();
    subs = undefined;
    const sent = sim.gateways.map((g) => ({ id: g.login.id, nextSeq: g.nextSeq, acked: g.acked }));
    const simStats = { ...sim.stats };
    const acks = sim.ackLatencies;
    await sim.close();
    sim = undefined;
    const check = await checkFleet({ pgUrl: PG_BASE, schema, tenant, sent, writesBefore });
    return {
      gateways: o.gateways,
      connected,
      connectMs,
      stages,
      ...sustained(stages),
      p50Ms: all.length ? quantile(all, 0.5) : NaN,
      p99Ms: all.length ? quantile(all, 0.99) : NaN,
      p99SteadyMs: steady.length ? quantile(steady, 0.99) : NaN,
      latencySamples: all.length,
      ackP50Ms: quantile(acks, 0.5),
      ackP99Ms: quantile(acks, 0.99),
      subscribers: subStats,
      check,
      rssKb,
      sim: simStats,
      drained,
      faults,
      rejected,
    };
  } finally {
    await subs?.close().catch(() => undefined);
    await sim?.close().catch(() => undefined);
    for (const r of relays) await r.stop().catch(() => undefined);
    await broker.stop().catch(() => undefined);
    await dropPgSchema(schema).catch(() => undefined);
    await deleteRedisKeys(`redis://127.0.0.1:6379/${o.redisDb}`, redisPrefix).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
