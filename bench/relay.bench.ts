/**
 * Relay: ingest rate from 100 simulated gateways (MQTT, PUBACK = stored), fan-out latency from
 * gateway publish to 500 graphql-ws subscribers, and storage upserts/s on SQLite and PostgreSQL.
 */
import path from 'node:path';
import { silentLogger, type CloudEvent } from '@tu/shared';
import { StorageQueue } from '@tu/relay/internal/ingest/storage-queue';
import { effectsOf, openStorage, storedEvent, type Relay } from '@tu/relay';
import { recordAim } from './aims.js';
import { tmpDir } from '../test/support/harness.js';
import { addGateway, analysisFlow, connectGateway, dropPgSchema, PG_BASE, pgSchemaName, publishEvent, startTestRelay, subscribeEvents, tokenFor } from '../test/support/relay.js';
import { fmt, quantile, table } from './stats.js';

async function ingest(relay: Relay, gateways: number, flowsEach: number): Promise<{ events: number; perS: number }> {
  const clients = [];
  for (let i = 0; i < gateways; i++) clients.push(await connectGateway(relay.mqttUrl, `bench-${i}`, await addGateway(relay, `bench-${i}`, 'bench')));
  const t0 = performance.now();
  const counts = await Promise.all(
    clients.map(async (c, i) => {
      let n = 0;
      for (let f = 0; f < flowsEach; f++) {
        const flow = analysisFlow(`bench-${i}`, { machineId: `m-${i}` });
        await Promise.all(flow.map((e) => publishEvent(c, `bench-${i}`, e)));
        n += flow.length;
      }
      return n;
    }),
  );
  const s = (performance.now() - t0) / 1000;
  for (const c of clients) c.end(true);
  const events = counts.reduce((a, b) => a + b, 0);
  return { events, perS: events / s };
}

async function fanout(relay: Relay, subscribers: number, events: number): Promise<number[]> {
  const gw = await connectGateway(relay.mqttUrl, 'fan-gw', await addGateway(relay, 'fan-gw', 'fan'));
  const token = await tokenFor('fan');
  const subs = [];
  for (let i = 0; i < subscribers; i++) subs.push(await subscribeEvents(relay, token));
  const latencies: number[] = [];
  for (let k = 0; k < events; k++) {
    const e = analysisFlow('fan-gw')[0]!;
    const t0 = performance.now();
    const seen = subs.map((s) => s.events.length);
    void publishEvent(gw, 'fan-gw', e);
    const pending = new Set(subs.map((_, i) => i));
    while (pending.size > 0) {
      for (const i of pending) {
        if (subs[i]!.events.length > seen[i]!) {
          latencies.push(performance.now() - t0);
          pending.delete(i);
        }
      }
      if (pending.size > 0) await new Promise((r) => setImmediate(r));
    }
  }
  for (const s of subs) await s.close();
  gw.end(true);
  return latencies;
}

async function upserts(url: string, n: number, batch: number): Promise<number> {
  const s = await openStorage(url);
  await s.addTenant({ id: 't' });
  const items = completions(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i += batch) await s.recordEvents(items.slice(i, i + batch));
  const perS = n / ((performance.now() - t0) / 1000);
  await s.close();
  return perS;
}

/** `n` analysis.completed events over 500 machines, as storage receives them (event + effects). */
function completions(n: number) {
  return Array.from({ length: n }, (_, i) => {
    const e = analysisFlow('gw', { machineId: `m-${i % 500}` }).at(-1)! as unknown as CloudEvent;
    return { event: storedEvent(e, 'gw', 't', new Date().toISOString()), effects: effectsOf(e, 'gw', 't') };
  });
}

/** The relay's write path: every event pushed to its storage queue at once, `writers` batches in flight (relay/src/ingest/storage-queue.ts). */
async function queuedUpserts(url: string, n: number, batchMax: number, writers: number): Promise<number> {
  const s = await openStorage(url);
  await s.addTenant({ id: 't' });
  const items = completions(n);
  const queue = new StorageQueue(s, { max: n, batchMax, writers, logger: silentLogger() });
  const t0 = performance.now();
  const out = await Promise.all(items.map((it) => queue.push({ kind: 'event', ...it })));
  const perS = n / ((performance.now() - t0) / 1000);
  await queue.close();
  await s.close();
  if (out.some((r) => r !== 'stored')) throw new Error('bench: an event was not stored');
  return perS;
}

export default async function run(): Promise<void> {
  const relay = await startTestRelay({ overrides: { dedupWindow: 1_000_000 } });
  const ing = await ingest(relay, 100, 10);
  const lat = await fanout(relay, 500, 30);
  await relay.stop();
  const sqliteUrl = `sqlite:${path.join(tmpDir('tu-relay-bench-'), 'r.sqlite')}`;
  const schema = pgSchemaName();
  const rows: (string | number)[][] = [
    ['measure', 'value', 'notes'],
    ['ingest (100 gateways, MQTT QoS 1, PUBACK after SQLite commit)', `${fmt(ing.perS, 0)} events/s`, `${ing.events} events`],
    ['fan-out publish → 500 graphql-ws clients p50', `${fmt(quantile(lat, 0.5))} ms`, `${lat.length} deliveries`],
    ['fan-out p99', `${fmt(quantile(lat, 0.99))} ms`, ''],
    ['storage upserts/s SQLite (WAL, synchronous=FULL, batch 100)', `${fmt(await upserts(sqliteUrl, 5000, 100), 0)}/s`, 'analysis.completed: event + machine + analysis'],
    ['storage upserts/s SQLite (batch 1)', `${fmt(await upserts(`sqlite:${path.join(tmpDir('tu-relay-bench-'), 'r1.sqlite')}`, 1000, 1), 0)}/s`, ''],
  ];
  try {
    rows.push(['storage upserts/s PostgreSQL (batch 100)', `${fmt(await upserts(`${PG_BASE}?schema=${schema}`, 5000, 100), 0)}/s`, PG_BASE]);
    await dropPgSchema(schema);
    const s200 = pgSchemaName();
    rows.push(['storage upserts/s PostgreSQL (batch 200, one batch at a time)', `${fmt(await upserts(`${PG_BASE}?schema=${s200}`, 5000, 200), 0)}/s`, '']);
    await dropPgSchema(s200);
    const sq1 = pgSchemaName();
    rows.push(['storage upserts/s PostgreSQL (storage queue: batch 200, 1 writer)', `${fmt(await queuedUpserts(`${PG_BASE}?schema=${sq1}`, 10_000, 200, 1), 0)}/s`, 'what the second writer buys: the row below ÷ this one']);
    await dropPgSchema(sq1);
    // The relay's write path with its defaults (relay/src/config.ts storage.batchMax 200, storage.writers 2): the figure the issue 11 aim is about.
    const sq = pgSchemaName();
    const pgQueued = await queuedUpserts(`${PG_BASE}?schema=${sq}`, 10_000, 200, 2);
    rows.push(['storage upserts/s PostgreSQL (storage queue: batch 200, 2 writers, the defaults)', `${fmt(pgQueued, 0)}/s`, recordAim({ figure: 'PostgreSQL upserts/s, batched (storage queue, batch 200, 2 writers)', value: pgQueued, unit: '/s', aim: 5000, better: 'higher' })]);
    await dropPgSchema(sq);
    const s1 = pgSchemaName();
    rows.push(['storage upserts/s PostgreSQL (batch 1)', `${fmt(await upserts(`${PG_BASE}?schema=${s1}`, 1000, 1), 0)}/s`, '']);
    await dropPgSchema(s1);
  } catch (err) {
    rows.push(['storage upserts/s PostgreSQL', 'n/a', (err as Error).message]);
  }
  console.log(table(rows));
}
