import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import mqtt, { type MqttClient } from 'mqtt';
import type { Relay } from '@tu/relay';
import path from 'node:path';
import { gatewayTopics, parseRelayLimits, silentLogger, topics } from '@tu/shared';
import { openStorage, type PresenceUpdate, type Storage } from '@tu/relay';
import { Presence } from '@tu/relay/internal/ingest/presence';
import { StorageQueue } from '@tu/relay/internal/ingest/storage-queue';
import { tmpDir, until } from './support/harness.js';
import { addGateway, analysisFlow, connectGateway, envelope, publishEvent, publishRaw, startTestRelay, tokenFor, gql } from './support/relay.js';
import { labelled } from './support/fixtures.js';

type Ctx = { relay: Relay; secrets: Record<string, string>; clients: MqttClient[] };
const test = suite<Ctx>('relay ingress: embedded broker, gateway credentials and the uplink contract');

test.before(async (ctx) => {
  ctx.relay = await startTestRelay();
  ctx.secrets = { 'gw-1': await addGateway(ctx.relay, 'gw-1', 'acme'), 'gw-2': await addGateway(ctx.relay, 'gw-2', 'acme') };
  ctx.clients = [];
});
test.after(async (ctx) => {
  for (const c of ctx.clients) c.end(true);
  await ctx.relay.stop();
});

const connect = async (ctx: Ctx, gw: string, secret = ctx.secrets[gw]!, url = ctx.relay.mqttUrl) => {
  const c = await connectGateway(url, gw, secret);
  ctx.clients.push(c);
  return c;
};
const refusedConnect = (p: Promise<unknown>) => p.then(() => false, (err: Error) => /Bad username or password|Not authorized|refused/i.test(err.message));

test('bad credentials and unknown gateways are refused and counted', async (ctx) => {
  const before = ctx.relay.deps.ingress()!.refusedConnects;
  assert.ok(await refusedConnect(connectGateway(ctx.relay.mqttUrl, 'gw-1', 'wrong-secret')));
  assert.ok(await refusedConnect(connectGateway(ctx.relay.mqttUrl, 'gw-nobody', ctx.secrets['gw-1']!)));
  assert.ok(await refusedConnect(connectGateway(ctx.relay.mqttUrl, 'gw-2', ctx.secrets['gw-1']!)), "another gateway's secret");
  assert.is(ctx.relay.deps.ingress()!.refusedConnects - before, 3);
});

test('a gateway cannot take over another gateway\'s client id; a reconnect replaces its own stale connection', async (ctx) => {
  // Attack (issue 8 #2): gateway B, with its own valid credentials, connected with client id
  // `gw-1` and kicked gateway A off again and again; the dashboard showed A offline.
  const a = await connect(ctx, 'gw-1');
  let kicked = 0;
  a.on('close', () => kicked++);
  const before = ctx.relay.deps.ingress()!.refusedConnects;
  for (let i = 0; i < 5; i++) {
    const err = await connectGateway(ctx.relay.mqttUrl, 'gw-2', ctx.secrets['gw-2']!, { clientId: 'gw-1' }).then(
      (c) => (c.end(true), ''),
      (e: Error) => e.message,
    );
    assert.match(err, /Identifier rejected/i);
  }
  assert.is(ctx.relay.deps.ingress()!.refusedConnects - before, 5);
  await new Promise((r) => setTimeout(r, 100));
  assert.is(kicked, 0);
  assert.ok(a.connected);
  assert.ok(ctx.relay.deps.presence.online('gw-1'));
  // The gateway itself reconnecting (same id) replaces the old connection and stays online.
  const a2 = await connect(ctx, 'gw-1');
  await until(() => kicked === 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(a2.connected);
  assert.ok(ctx.relay.deps.presence.online('gw-1'), 'the stale connection closing does not take the gateway offline');
});

test('valid events are acknowledged once stored; machine record and analysis are written', async (ctx) => {
  const c = await connect(ctx, 'gw-1');
  const flow = analysisFlow('gw-1', { machineId: 'exc-7', thumbnail: 'dGh1bWI=' });
  for (const e of flow) assert.is(await publishEvent(c, 'gw-1', e), 'ok');
  // PUBACK means stored: no waiting needed.
  assert.is(await ctx.relay.storage.countEvents({ gatewayId: 'gw-1' }), flow.length);
  const m = await ctx.relay.storage.getMachine('acme', 'exc-7');
  assert.is(m?.type, 'excavator');
  assert.is(m?.latestThumbnail, 'dGh1bWI=');
  assert.is((await ctx.relay.storage.getAnalysis('acme', flow[0]!.subject))?.status, 'completed');
  assert.ok(ctx.relay.deps.presence.online('gw-1'));
});

test('an analysis.completed without results (the gateway could not read its state) is stored as an analysis with none', async (ctx) => {
  const c = await connect(ctx, 'gw-1');
  const flow = analysisFlow('gw-1', { machineId: 'exc-8' });
  const done = flow.at(-1)!;
  const { results: _dropped, ...data } = done.data as Record<string, unknown>;
  assert.is(await publishEvent(c, 'gw-1', { ...done, data }), 'ok');
  const a = await ctx.relay.storage.getAnalysis('acme', done.subject);
  assert.is(a?.status, 'completed');
  assert.equal(a?.results, {});
  const m = await ctx.relay.storage.getMachine('acme', 'exc-8');
  assert.ok(m, 'the machine is recorded');
  assert.is(m?.lastRecognition, null, 'no recognition to keep');
});

test('duplicates (re-sends after a crash) are stored once and counted', async (ctx) => {
  const c = await connect(ctx, 'gw-2');
  const flow = analysisFlow('gw-2');
  const before = ctx.relay.deps.ingest.stats.duplicates;
  for (const e of flow) assert.is(await publishEvent(c, 'gw-2', e), 'ok');
  for (const e of flow) assert.is(await publishEvent(c, 'gw-2', e), 'ok', 'a duplicate is still acknowledged');
  assert.is(await ctx.relay.storage.countEvents({ gatewayId: 'gw-2' }), flow.length);
  assert.is(ctx.relay.deps.ingest.stats.duplicates - before, flow.length);
});

test("another gateway's event with an id this gateway used is its own event: stored and fanned out, not a duplicate", async (ctx) => {
  // Event ids are each gateway's choice. Keyed by id alone, gw-1 re-using gw-2's ids (a bug, or
  // on purpose) had gw-2's events acknowledged as duplicates and never stored nor shown.
  const c1 = await connect(ctx, 'gw-1');
  const c2 = await connect(ctx, 'gw-2');
  const first = analysisFlow('gw-1');
  for (const e of first) assert.is(await publishEvent(c1, 'gw-1', e), 'ok');
  const before = { duplicates: ctx.relay.deps.ingest.stats.duplicates, fannedOut: ctx.relay.deps.ingest.stats.fannedOut, stored: await ctx.relay.storage.countEvents({ gatewayId: 'gw-2' }) };
  const same = analysisFlow('gw-2').map((e, i) => ({ ...e, id: first[i]!.id }));
  for (const e of same) assert.is(await publishEvent(c2, 'gw-2', e), 'ok');
  assert.is(await ctx.relay.storage.countEvents({ gatewayId: 'gw-2' }), before.stored + same.length);
  assert.is(ctx.relay.deps.ingest.stats.duplicates, before.duplicates);
  assert.is(ctx.relay.deps.ingest.stats.fannedOut - before.fannedOut, same.length);
  // A re-send by gw-2 is still its duplicate.
  assert.is(await publishEvent(c2, 'gw-2', same[0]!), 'ok');
  assert.is(ctx.relay.deps.ingest.stats.duplicates - before.duplicates, 1);
  assert.is(await ctx.relay.storage.countEvents({ gatewayId: 'gw-2' }), before.stored + same.length);
});

test('invalid envelopes are acknowledged (never re-sent forever) but rejected by reason, never stored nor fanned out', async (ctx) => {
  const c = await connect(ctx, 'gw-1');
  const stored = await ctx.relay.storage.countEvents();
  const fanned = ctx.relay.deps.ingest.stats.fannedOut;
  const good = analysisFlow('gw-1')[0]!;
  const cases: [string, string | Buffer, string][] = [
    ['tu/gw-1/evt/analysis.started', 'not json', 'INVALID_JSON'],
    ['tu/gw-1/evt/analysis.started', JSON.stringify({ ...good, specversion: '0.3' }), 'INVALID_ENVELOPE'],
    ['tu/gw-1/evt/analysis.completed', JSON.stringify(good), 'TYPE_TOPIC_MISMATCH'],
    ['tu/gw-1/evt/analysis.started', JSON.stringify({ ...good, source: '/gateways/gw-2/svc-analysis-orchestrator' }), 'WRONG_GATEWAY'],
    ['tu/gw-1/evt/analysis.started', JSON.stringify({ ...good, source: '/gateways/gw-1/intake' }), 'WRONG_PRODUCER'],
    ['tu/gw-1/evt/analysis.started', JSON.stringify({ ...good, data: { analysisId: good.subject } }), 'INVALID_DATA'],
    ['tu/gw-1/evt/no.such.type', JSON.stringify(good), 'UNKNOWN_TOPIC'],
    ['tu/gw-1/evt/analysis.recognition.request', JSON.stringify(good), 'COMMAND_REFUSED'],
    // A packed embedding of the right length whose values are not finite floats (NaN bytes).
    ['tu/gw-1/evt/recognition.labelled', JSON.stringify(envelope('gw-1', 'recognition.labelled', labelled({ embedding: { dtype: 'float32', dim: 2, base64: Buffer.alloc(8, 0xff).toString('base64') } }))), 'INVALID_DATA'],
    // A label whose vector the gateway could not read (still a reference): an example without its numbers trains nothing.
    ['tu/gw-1/evt/recognition.labelled', JSON.stringify(envelope('gw-1', 'recognition.labelled', labelled({ embedding: { ref: { sha256: 'a'.repeat(64), model: 'm' }, dim: 256, dtype: 'float32' } }))), 'EMBEDDING_MISSING'],
  ];
  const rejected = ctx.relay.deps.ingest.stats.rejected;
  for (const [topic, payload, code] of cases) {
    const before = rejected[code as keyof typeof rejected] ?? 0;
    assert.is(await publishRaw(c, topic, payload), 'ok', code);
    assert.is((rejected[code as keyof typeof rejected] ?? 0) - before, 1, code);
  }
  assert.is(await ctx.relay.storage.countEvents(), stored);
  assert.is(ctx.relay.deps.ingest.stats.fannedOut, fanned);
  const metrics = (await ctx.relay.app.inject({ url: '/metrics' })).body;
  assert.match(metrics, /tu_relay_events_rejected_total\{code="WRONG_GATEWAY"\} 1/);
  assert.match(metrics, /tu_relay_events_duplicate_total\{stage="memory"\} \d+/);
});

test('a gateway publishing under another gateway id, or off-contract topics, is refused and disconnected', async (ctx) => {
  const before = ctx.relay.deps.ingress()!.refusedPublishes;
  const stored = await ctx.relay.storage.countEvents();
  const other = analysisFlow('gw-2')[0]!;
  const c1 = await connect(ctx, 'gw-1');
  assert.is(await publishEvent(c1, 'gw-2', other), 'refused');
  const c2 = await connect(ctx, 'gw-1');
  assert.is(await publishRaw(c2, 'tu/gw-1/cmd/analysis.recognition.request/i1', '{}'), 'refused');
  const c3 = await connect(ctx, 'gw-1');
  assert.is(await publishRaw(c3, `tu/gw-1/evt/analysis.started`, JSON.stringify(analysisFlow('gw-1')[0]), true), 'refused', 'retained events are refused');
  const c4 = await connect(ctx, 'gw-1');
  const granted = await c4.subscribeAsync('tu/#', { qos: 1 }).then((g) => g[0]!.qos, () => 128);
  assert.is(granted, 128, 'gateways may subscribe to nothing');
  assert.is(ctx.relay.deps.ingress()!.refusedPublishes - before, 3);
  assert.is(await ctx.relay.storage.countEvents(), stored);
});

test("a gateway is told the relay's payload limit right after it connects; a publish over it closes the connection (no PUBACK), counted by path", async (ctx) => {
  // Listening before the CONNACK: the relay sends it unasked, at once (gateways subscribe to nothing).
  const told: { topic: string; payload: string }[] = [];
  const c = mqtt.connect(ctx.relay.mqttUrl, { protocolVersion: 4, clientId: 'gw-1', username: 'gw-1', password: ctx.secrets['gw-1']!, reconnectPeriod: 0 });
  ctx.clients.push(c);
  c.on('message', (topic, payload) => told.push({ topic, payload: payload.toString() }));
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });
  await until(() => told.length > 0, 2000, 'the limits message');
  assert.equal(told, [{ topic: gatewayTopics.limits('gw-1'), payload: JSON.stringify({ maxPayloadBytes: 512 * 1024 }) }]);
  assert.equal(parseRelayLimits(told[0]!.payload), { maxPayloadBytes: 512 * 1024 });

  const ing = ctx.relay.deps.ingress()!;
  const before = { publishes: ing.refusedPublishes, oversize: ing.admission!.refusedOversize };
  const stored = await ctx.relay.storage.countEvents();
  // Up to 1 KiB over: the broker reads it and authorizePublish refuses it; further over: cut at its header.
  const justOver = analysisFlow('gw-1')[0]!;
  const over = JSON.stringify({ ...justOver, pad: 'x'.repeat(512 * 1024 + 10 - JSON.stringify(justOver).length - 10) });
  assert.ok(Buffer.byteLength(over) > 512 * 1024 && Buffer.byteLength(over) < 512 * 1024 + 500);
  assert.is(await publishRaw(c, topics.event('gw-1', 'analysis.started'), over), 'refused');
  const c2 = await connect(ctx, 'gw-1');
  assert.is(await publishRaw(c2, topics.event('gw-1', 'analysis.started'), Buffer.alloc(600 * 1024, 0x7b)), 'refused');
  assert.is(ing.refusedPublishes - before.publishes, 1);
  assert.is(ing.admission!.refusedOversize - before.oversize, 1);
  assert.is(await ctx.relay.storage.countEvents(), stored);
});

test('MQTT over WebSocket at /mqtt on the HTTP port', async (ctx) => {
  const c = await connect(ctx, 'gw-2', ctx.secrets['gw-2'], ctx.relay.mqttWsUrl);
  const flow = analysisFlow('gw-2');
  assert.is(await publishEvent(c, 'gw-2', flow[0]!), 'ok');
  assert.ok(await ctx.relay.storage.getAnalysis('acme', flow[0]!.subject));
});

test('online/offline follows the ingress connection', async (ctx) => {
  for (const c of ctx.clients.splice(0)) c.end(true);
  const token = await tokenFor('acme');
  await until(() => ctx.relay.deps.presence.online('gw-1') === false && ctx.relay.deps.presence.online('gw-2') === false, 5000, 'offline');
  const c = await connect(ctx, 'gw-1');
  await until(() => ctx.relay.deps.presence.online('gw-1') === true, 5000, 'online');
  const r = await gql<{ gateways: { nodes: { id: string; online: boolean; lastSeen: string | null }[] } }>(ctx.relay, token, '{ gateways { nodes { id online lastSeen } } }');
  assert.equal(r.data?.gateways.nodes.map((g) => [g.id, g.online]), [['gw-1', true], ['gw-2', false]]);
  assert.ok(r.data?.gateways.nodes.every((g) => g.lastSeen));
  c.end(true);
  await until(() => ctx.relay.deps.presence.online('gw-1') === false, 5000, 'offline after disconnect');
});

test('last seen: every accepted event moves it in memory; storage gets it at most once per interval per gateway', async () => {
  const storage = await openStorage(`sqlite:${path.join(tmpDir('tu-relay-presence-'), 'relay.sqlite')}`);
  await storage.addTenant({ id: 'acme' });
  await storage.addGateway({ id: 'gw-p', tenantId: 'acme', secretHash: 'x' });
  const writes: string[] = [];
  // Counts the presence writes that reach the real database.
  const counted: Storage = Object.assign(Object.create(storage) as Storage, {
    setGatewayPresences: (updates: readonly PresenceUpdate[]) => {
      writes.push(...updates.map((u) => u.at));
      return storage.setGatewayPresences(updates);
    },
  });
  const queue = new StorageQueue(counted, { max: 100, batchMax: 10, logger: silentLogger() });
  let now = Date.parse('2031-03-01T10:00:00.000Z');
  const presence = new Presence(queue, { authoritative: true, now: () => new Date(now), persistEveryMs: 30_000 });
  try {
    presence.connected('gw-p');
    for (let i = 1; i <= 20; i++) {
      now += 1000;
      presence.seen('gw-p');
      assert.is(presence.lastSeen('gw-p'), new Date(now).toISOString(), 'in memory at once');
    }
    await queue.flush();
    assert.equal(writes, ['2031-03-01T10:00:00.000Z'], 'no write per event within the interval');
    now += 10_001; // 30 s after the connection's write
    presence.seen('gw-p');
    await queue.flush();
    assert.is(writes.length, 2);
    assert.is((await storage.getGateway('gw-p'))?.lastSeen, '2031-03-01T10:00:30.001Z');
    assert.is((await storage.getGateway('gw-p'))?.online, true);
  } finally {
    await queue.close();
    await storage.close();
  }
});

test.run();
