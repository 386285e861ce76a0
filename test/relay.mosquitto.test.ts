import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connectAsync, type MqttClient } from 'mqtt';
import { checkGatewayPublish, relaySubscriptions, topicMatches, topics } from '@tu/shared';
import { Registry, type Relay } from '@tu/relay';
import { until } from './support/harness.js';
import { startMosquitto } from './support/mosquitto.js';
import { analysisFlow, connectGateway, gql, publishEvent, startTestRelay, subscribeEvents, tokenFor } from './support/relay.js';

type Ctx = { relay: Relay; mosq: Awaited<ReturnType<typeof startMosquitto>>; gws: MqttClient[]; secrets: Record<string, string> };
const test = suite<Ctx>('relay ingress through an external Mosquitto (password file + ACL)');

test.before(async (ctx) => {
  ctx.secrets = { 'gw-m1': 'gw-m1-secret-0123456789', 'gw-m2': 'gw-m2-secret-0123456789', 'gw-r1': 'gw-r1-secret-0123456789', 'gw-r2': 'gw-r2-secret-0123456789' };
  ctx.mosq = await startMosquitto({ ...ctx.secrets, relay: 'relay-password-0123456789' }, 'relay');
  ctx.relay = await startTestRelay({ overrides: { 'ingress.mode': 'external', 'ingress.url': ctx.mosq.url, 'ingress.username': 'relay', 'ingress.password': 'relay-password-0123456789', 'ingress.clientId': `relay-test-${process.pid}`, 'ingress.credentialCheckMs': 200 } });
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

/** Publishes the flow (acknowledged by the broker on receipt) and waits for the relay to handle it; what came of it. */
async function publishAfterRevocation(ctx: Ctx, gwId: string): Promise<{ acks: string[]; stored: number; fannedOut: number; refused: number }> {
  const sub = await subscribeEvents(ctx.relay, await tokenFor('acme'), gwId);
  const refusedBefore = ctx.relay.deps.ingest.stats.rejected.UNKNOWN_GATEWAY ?? 0;
  const receivedBefore = ctx.relay.deps.ingest.stats.received;
  const c = await connectGateway(ctx.mosq.url, gwId, ctx.secrets[gwId]!);
  ctx.gws.push(c);
  const flow = analysisFlow(gwId);
  const acks: string[] = [];
  for (const e of flow) acks.push(await publishEvent(c, gwId, e));
  await until(() => ctx.relay.deps.ingest.stats.received >= receivedBefore + flow.length && ctx.relay.deps.queue.depth === 0, 5000, 'the relay to handle the flow');
  // A fan-out (or a write) would show by now.
  await new Promise((r) => setTimeout(r, 300));
  await sub.close();
  c.end(true);
  return { acks, stored: await ctx.relay.storage.countEvents({ gatewayId: gwId }), fannedOut: sub.events.length, refused: (ctx.relay.deps.ingest.stats.rejected.UNKNOWN_GATEWAY ?? 0) - refusedBefore };
}

test('a gateway revoked through this instance: the broker still lets it publish (its password file), the relay acknowledges and refuses its events, never stores nor fans them out', async (ctx) => {
  assert.ok(await ctx.relay.registry.revoke('gw-r1'));
  const r = await publishAfterRevocation(ctx, 'gw-r1');
  assert.ok(r.acks.length > 0 && r.acks.every((a) => a === 'ok'), r.acks.join());
  assert.equal({ stored: r.stored, fannedOut: r.fannedOut, refused: r.refused }, { stored: 0, fannedOut: 0, refused: r.acks.length });
  // The registry says "revoked" by each read: the cached row, a re-read of all, a fresh start.
  assert.is((await ctx.relay.registry.gateway('gw-r1'))?.revoked, true);
  await ctx.relay.registry.refresh();
  assert.is(ctx.relay.registry.cached('gw-r1')?.revoked, true);
  const fresh = new Registry(ctx.relay.storage);
  await fresh.load();
  assert.is(fresh.cached('gw-r1')?.revoked, true);
  assert.is(fresh.cached('gw-m1')?.revoked, false);
});

test('a gateway revoked elsewhere (the CLI, another instance): its events are refused within ingress.credentialCheckMs', async (ctx) => {
  // Let the relay take (and cache) one event first, as a gateway at work would.
  const c = await connectGateway(ctx.mosq.url, 'gw-r2', ctx.secrets['gw-r2']!);
  const [first] = analysisFlow('gw-r2');
  const stored = ctx.relay.deps.queue.stats.stored;
  assert.is(await publishEvent(c, 'gw-r2', first!), 'ok');
  await until(() => ctx.relay.deps.queue.stats.stored > stored, 5000, 'stored');
  assert.is(await ctx.relay.storage.countEvents({ gatewayId: 'gw-r2' }), 1);
  c.end(true);
  // What `gateways revoke` does: its own registry over the same storage; this instance's cache is not told.
  assert.ok(await new Registry(ctx.relay.storage).revoke('gw-r2'));
  await until(() => ctx.relay.registry.cached('gw-r2')?.revoked === true, 5000, 'the credential check (200 ms) to see the revocation');
  const r = await publishAfterRevocation(ctx, 'gw-r2');
  assert.equal({ stored: r.stored, fannedOut: r.fannedOut, refused: r.refused }, { stored: 1, fannedOut: 0, refused: r.acks.length });
});

test.run();
