/**
 * Fleet load and fault test (issue 11): relay instances run from the production build
 * (`node relay/dist/main.js`), PostgreSQL and Redis, a simulator of many gateways (each a real
 * MQTT connection with its own login) sending the six-event analysis sequence at raised rates,
 * 200 graphql-ws subscribers, one relay instance (and, with a broker of its own, one broker node)
 * killed and restarted during the load; then a check of every stored event per gateway.
 *
 *   npm run bench -- fleet
 *   TU_FLEET_GATEWAYS=10000 TU_FLEET_SECONDS=60 TU_FLEET_RATES=2000,4000,6000,8000 npm run bench -- fleet
 *
 * 10,000 connections need as many file descriptors in this process (`ulimit -n`, raise it with
 * `ulimit -n 65536` in the shell that runs the bench). Everything runs on 127.0.0.1.
 * The last line of the output is the summary `fleet: gateways=… events_per_s=… p99_ms=… lost=…
 * duplicated=… out_of_order=…` (bench/run.ts prints benches' summaries after the aims table).
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { z } from 'zod';
import { recordAim } from './aims.js';
import { fleetBrokerFromEnv } from './fleet/broker-choice.js';
import { productionVerifyMs } from './fleet/registry.js';
import { KEPT_UP, keptUp, runFleet, summaryLine, type StageFigures } from './fleet/run.js';
import { fmt, table } from './stats.js';

const env = z
  .object({
    TU_FLEET_GATEWAYS: z.coerce.number().int().min(1).max(20_000).default(10_000),
    TU_FLEET_RELAYS: z.coerce.number().int().min(1).max(8).default(3),
    TU_FLEET_SECONDS: z.coerce.number().min(10).max(600).default(60),
    TU_FLEET_RATES: z
      .string()
      .regex(/^\d+(,\d+)*$/, 'comma-separated events/s, e.g. 2000,4000,6000')
      .default('2000,4000,6000,8000')
      .transform((s) => s.split(',').map(Number)),
    TU_FLEET_SUBSCRIBERS: z.coerce.number().int().min(0).max(1000).default(200),
    /**
     * Gateways each subscriber watches: more deliveries make the p99 steadier (with one each, 200
     * subscribers saw about 4,200 events in a run, so 7 analyses decided the p99).
     */
    TU_FLEET_WATCH_PER_SUBSCRIBER: z.coerce.number().int().min(1).max(100).default(5),
    /** Load before the measured run (bench/fleet/run.ts says why), at the first rate. */
    TU_FLEET_WARMUP_SECONDS: z.coerce.number().min(0).max(60).default(3),
  })
  .parse(process.env);

function fdLimit(): number {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
  } catch {
    return NaN;
  }
}

/** Names what ran out in the first stage that fell behind: the machine, a component's CPU, or the database writer. */
function bottleneck(s: StageFigures, cores: number): string {
  const ours = { 'relay instances': s.relayCpu, broker: s.brokerCpu, 'postgres (all users)': s.databaseCpu, 'simulator + subscribers': s.simCpu };
  const others = Math.max(0, s.machineBusy * cores - Object.values(ours).reduce((a, b) => a + b, 0));
  const [top, topCores] = Object.entries(ours).sort((a, b) => b[1] - a[1])[0]!;
  const use = `${Object.entries(ours).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}, other processes ${fmt(others)} of ${cores} cores`;
  const head = `${s.offered}/s offered, ${fmt(s.ackedPerS, 0)}/s acknowledged`;
  if (s.machineBusy > 0.95 && others > 0.5 * cores) return `${head}: the machine's CPU, mostly taken by other processes (${use})`;
  if (s.queueDepth > 0 && s.relayCpu < 0.5 * cores) return `${head}: the relays' storage writers (queue ${s.queueDepth}, ${fmt(s.eventRowsPerS, 0)} event rows/s and ${fmt(s.presenceUpdatesPerS, 0)} presence updates/s; ${use})`;
  return `${head}: ${top} (${fmt(topCores)} cores; ${use})`;
}

export default async function run(): Promise<string> {
  const fds = fdLimit();
  // Each gateway is one socket here; relays, subscribers and the database need some more.
  if (Number.isFinite(fds) && fds < env.TU_FLEET_GATEWAYS + 1000) throw new Error(`open-file limit ${fds} is too low for ${env.TU_FLEET_GATEWAYS} gateways: run \`ulimit -n 65536\` in this shell first (hard limit: \`ulimit -Hn\`)`);
  const broker = fleetBrokerFromEnv();
  const r = await runFleet(
    { gateways: env.TU_FLEET_GATEWAYS, relays: env.TU_FLEET_RELAYS, seconds: env.TU_FLEET_SECONDS, rates: env.TU_FLEET_RATES, subscribers: env.TU_FLEET_SUBSCRIBERS, watchPerSubscriber: env.TU_FLEET_WATCH_PER_SUBSCRIBER, warmupSeconds: env.TU_FLEET_WARMUP_SECONDS, killRelayAt: 0.35, killBrokerAt: 0.65 },
    broker,
  );
  const saturated = r.stages.find((s) => !keptUp(s));
  const cores = os.cpus().length;
  const where = saturated ? bottleneck(saturated, cores) : `every stage acknowledged ≥ ${KEPT_UP * 100}% of its offered rate with under a second of it waiting for storage (raise TU_FLEET_RATES)`;
  console.log(
    table([
      ['measure', 'value', 'notes'],
      ['broker', broker.kind, `${env.TU_FLEET_RELAYS} relay instance(s), PostgreSQL, Redis fan-out`],
      ['gateways connected at once', `${r.connected}/${r.gateways}`, `${fmt(r.connectMs / 1000, 1)} s in waves; ${r.sim.connectFailures} refused/timed out first time`],
      ['sustained ingest (PUBACK after commit)', `${fmt(r.eventsPerS, 0)} events/s`, r.keptUp ? `the best stage that acknowledged ≥ ${KEPT_UP * 100}% of its offered rate and ended with under a second of it waiting for storage (at most what it sent: no backlog counted)` : `no stage kept up (≥ ${KEPT_UP * 100}% acknowledged, under a second waiting): the best stage`],
      ['send → PUBACK (stored) p50 / p99', `${fmt(r.ackP50Ms, 0)} / ${fmt(r.ackP99Ms, 0)} ms`, 're-sends after a kill count from the first send'],
      ['ingest → subscriber p50', `${fmt(r.p50Ms, 0)} ms`, `${r.latencySamples} deliveries to ${r.subscribers.active}/${r.subscribers.subscribers} subscribers, ${r.subscribers.watchPerSubscriber} gateway(s) watched by each`],
      ['ingest → subscriber p99 (whole run)', `${fmt(r.p99Ms, 0)} ms`, `before the first fault: ${fmt(r.p99SteadyMs, 0)} ms`],
      ['database rows kept per event', fmt(r.check.rowsPerEvent), Object.entries(r.check.rowsByTable).map(([t, n]) => `${t} ${n}`).join(', ')],
      ['database row writes per event', fmt(r.check.rowWritesPerEvent), 'inserts + updates (pg_stat_user_tables) ÷ stored events'],
      ...r.rssKb.map((x) => [`RSS relay instance ${x.index}`, x.nowKb > 0 ? `${fmt(x.nowKb / 1024, 0)} MB` : 'not running', `peak of its last life ${fmt(x.peakKb / 1024, 0)} MB`]),
      ['faults', r.faults.join('; ') || 'none', `${r.sim.disconnects} gateway disconnects, ${r.subscribers.reconnects} subscriber reconnects`],
      ['stored / lost / unacknowledged', `${r.check.stored} / ${r.check.lost} / ${r.check.unacked}`, `lost = acknowledged but not stored (${r.check.gatewaysWithLoss} gateways); outbox drained: ${r.drained}`],
      ['duplicated / out of order (stored)', `${r.check.duplicated} / ${r.check.outOfOrder}`, `subscribers saw ${r.subscribers.duplicates} duplicate deliveries; relays rejected ${r.rejected} events`],
      ['saturation', saturated ? `${saturated.offered}/s` : 'not reached', where],
      ['login cost at production scrypt', `${fmt(await productionVerifyMs(), 0)} ms/login`, 'the fleet registry uses a cheaper N (bench/fleet/registry.ts); first login per instance pays this'],
    ]),
  );
  console.log(
    `\n${table([
      ['offered events/s', 'sent/s', 'acked/s', 'p99 ms', 'relay cores', 'relay CPU ms/event', 'broker cores', 'postgres cores (all users)', 'simulator cores', 'machine busy', 'storage queue', 'events per batch', 'event rows/s', 'presence updates/s', 'broker auth requests/s'],
      ...r.stages.map((s) => [s.offered, fmt(s.sentPerS, 0), fmt(s.ackedPerS, 0), fmt(s.p99Ms, 0), fmt(s.relayCpu), fmt(s.relayCpuMsPerEvent), fmt(s.brokerCpu), fmt(s.databaseCpu), fmt(s.simCpu), `${fmt(s.machineBusy * 100, 0)}%`, s.queueDepth, fmt(s.eventsPerBatch, 0), fmt(s.eventRowsPerS, 0), fmt(s.presenceUpdatesPerS, 0), fmt(s.authPerS, 0)]),
    ])}\n`,
  );
  console.log(recordAim({ figure: 'fleet: gateways connected at once', value: r.connected, unit: 'gateways', aim: 10_000, better: 'higher' }));
  console.log(recordAim({ figure: 'fleet: sustained ingest, ack after commit', value: Math.round(r.eventsPerS), unit: 'events/s', aim: 5000, better: 'higher' }));
  console.log(recordAim({ figure: 'fleet: ingest → subscriber p99 (200 subscribers)', value: Math.round(r.p99Ms), unit: 'ms', aim: 250, better: 'lower' }));
  // The aim "0 lost / 0 duplicated" as a ratio: the share of acknowledged events stored exactly once.
  const acked = r.sim.acked;
  // With nothing acknowledged there is no share to give (0 % would say events were lost).
  if (acked === 0) console.log('fleet: acknowledged events stored exactly once (after kills): n/a, no event was acknowledged');
  else console.log(recordAim({ figure: 'fleet: acknowledged events stored exactly once (after kills)', value: Number(((100 * (acked - r.check.lost - r.check.duplicated)) / acked).toFixed(3)), unit: '%', aim: 100, better: 'higher' }));
  return summaryLine(r);
}
