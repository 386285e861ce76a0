import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connectAsync, type MqttClient } from 'mqtt';
import { checkGatewayPublish, relaySubscriptions, topicMatches, topics } from '@tu/shared';
import type { Relay } from '@tu/relay';
import { until } from './support/harness.js';
import { startMosquitto } from './support/mosquitto.js';
import { analysisFlow, connectGateway, gql, publishEvent, startTestRelay, subscribeEvents, tokenFor } from './support/relay.js';

type Ctx = { relay: Relay; mosq: Awaited<ReturnType<typeof startMosquitto>>; gws: MqttClient[]; secrets: Record<string, string> };
const test = suite<Ctx>('relay ingress through an external Mosquitto (password file + ACL)');

test.before(async (ctx) => {
  ctx.secrets = { 'gw-m1': 'gw-m1-secret-0123456789', 'gw-m2': 'gw-m2-secret-0123456789' };
  ctx.mosq = await startMosquitto({ ...ctx.secrets, relay: 'relay-password-0123456789' }, 'relay');
  ctx.relay = await startTestRelay({ overrides: { 'ingress.mode': 'external', 'ingress.url': ctx.mosq.url, 'ingress.username': 'relay', 'ingress.password': 'relay-password-0123456789', 'ingress.clientId': `relay-test-${process.pid}` } });
  await ctx.relay.registry.addTenant('acme');
  for (const [id, secret] of Object.entries(ctx.secrets)) await ctx.relay.registry.addGateway(id, 'acme', { secret });
  ctx.gws = [];
});
test.after(async (ctx) => {
  for (const c of ctx.gws) c.end(true);
  await ctx.relay.stop();
  await ctx.mosq.stop();
});

test('events flow gateway → Mosquitto → relay → subscribers and storage; online/offline from status + last will', async (ctx) => {
  const sub = await subscribeEvents(ctx.relay, await tokenFor('acme'));
  const c = await connectGateway(ctx.mosq.url, 'gw-m1', ctx.secrets['gw-m1']!);
  ctx.gws.push(c);
  const flow = [...analysisFlow('gw-m1', { machineId: 'crane-1' }), ...analysisFlow('gw-m1', { outcome: 'failed' })];
  for (const e of flow) assert.is(await publishEvent(c, 'gw-m1', e), 'ok');
  await sub.waitFor(flow.length);
  assert.equal(sub.events.map((e) => e.id), flow.map((e) => e.id));
  await until(() => ctx.relay.deps.queue.depth === 0 && ctx.relay.deps.queue.stats.stored >= flow.length, 5000, 'stored');
  assert.is(await ctx.relay.storage.countEvents({ gatewayId: 'gw-m1' }), flow.length);
  assert.is((await ctx.relay.storage.getMachine('acme', 'crane-1'))?.type, 'excavator');
  await until(() => ctx.relay.deps.presence.online('gw-m1') === true, 5000, 'online from retained status');
  // Unclean loss of the gateway: Mosquitto publishes its last will (retained offline).
  c.stream.destroy();
  await until(() => ctx.relay.deps.presence.online('gw-m1') === false, 10_000, 'offline from last will');
  const r = await gql<{ gateway: { online: boolean } }>(ctx.relay, await tokenFor('acme'), '{ gateway(id: "gw-m1") { online } }');
  assert.is(r.data?.gateway.online, false);
  await sub.close();
});

test("Mosquitto's ACL drops a gateway's publish under another gateway id; the relay never sees it; bad credentials are refused", async (ctx) => {
  const c = await connectGateway(ctx.mosq.url, 'gw-m2', ctx.secrets['gw-m2']!);
  ctx.gws.push(c);
  const before = await ctx.relay.storage.countEvents();
  const forged = analysisFlow('gw-m1')[0]!;
  await publishEvent(c, 'gw-m1', forged); // MQTT 3.1.1: the broker acknowledges and drops it
  const own = analysisFlow('gw-m2')[0]!;
  assert.is(await publishEvent(c, 'gw-m2', own), 'ok');
  // The own event follows the forged one on the same connection: once it is stored, the forged one would have been.
  const accepted = ctx.relay.deps.ingest.stats.accepted;
  await until(() => ctx.relay.deps.ingest.stats.accepted > accepted || ctx.relay.deps.queue.stats.stored >= before + 1, 5000, 'own event ingested');
  await until(() => ctx.relay.deps.queue.depth === 0, 5000, 'stored');
  assert.is(await ctx.relay.storage.countEvents(), before + 1);
  assert.ok(await ctx.relay.storage.recentEventIds(100).then((keys) => !keys.some((k) => k.id === forged.id)));
  const refused = await connectGateway(ctx.mosq.url, 'gw-m2', 'wrong-password').then(() => false, () => true);
  assert.ok(refused);
});

test('a real Mosquitto running the generated ACL agrees with the contract, topic by topic', async (ctx) => {
  const c = await connectGateway(ctx.mosq.url, 'gw-m2', ctx.secrets['gw-m2']!);
  ctx.gws.push(c);
  // The relay's own identity observes what the broker lets through (it may read exactly the relay's subscriptions).
  const seen: string[] = [];
  const watcher = await connectAsync(ctx.mosq.url, { protocolVersion: 4, clientId: `watch-${process.pid}`, username: 'relay', password: 'relay-password-0123456789', reconnectPeriod: 0 });
  watcher.on('message', (t, payload) => seen.push(`${t} ${payload.toString()}`));
  await watcher.subscribeAsync(relaySubscriptions(), { qos: 1 });
  const candidates = [
    topics.event('gw-m2', 'analysis.completed'),
    `${topics.anyEvent('gw-m2').slice(0, -1)}not.a.type`,
    topics.gatewayStatus('gw-m2'),
    topics.event('gw-m1', 'analysis.completed'),
    topics.gatewayStatus('gw-m1'),
    topics.event('gw-m22', 'analysis.started'),
  ].filter((t) => relaySubscriptions().some((f) => topicMatches(f, t)));
  for (const t of candidates) await c.publishAsync(t, `probe-${t}`, { qos: 1 });
  const marker = topics.event('gw-m2', 'analysis.failed');
  await c.publishAsync(marker, 'marker', { qos: 1 });
  await until(() => seen.includes(`${marker} marker`), 5000, 'marker through Mosquitto');
  const through = candidates.filter((t) => seen.includes(`${t} probe-${t}`));
  assert.equal(through, candidates.filter((t) => checkGatewayPublish('gw-m2', t, false).ok));
  await watcher.endAsync();
});

test.run();
