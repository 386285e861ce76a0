import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Relay } from '@tu/relay';
import { startRedis } from './support/redis.js';
import { addGateway, analysisFlow, connectGateway, publishEvent, startTestRelay, subscribeEvents, tokenFor } from './support/relay.js';

type Health = { status: string; reasons: string[]; redis?: { fanout: { up: boolean; errors: number; lastError?: string } } };
type Ctx = { redis: Awaited<ReturnType<typeof startRedis>>; relays: Relay[] };
const test = suite<Ctx>('relay: a Redis outage (redis.url) stops the fan-out, never the relay');

const health = async (relay: Relay): Promise<Health> => (await relay.app.inject({ url: '/api/v1/health' })).json<Health>();
const readyStatus = async (relay: Relay): Promise<number> => (await relay.app.inject({ url: '/api/v1/ready' })).statusCode;
async function eventually(pred: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Our own redis-server: the test stops it (the shared test Redis of the other suites stays up).
test.before(async (ctx) => {
  ctx.redis = await startRedis();
  ctx.relays = [];
});
test.after(async (ctx) => {
  for (const r of ctx.relays) await r.stop();
  await ctx.redis.stop();
});

test('Redis stopped under a running relay: it keeps ingesting and storing, health says the fan-out fails (ready stays 200); Redis back on the same port: fan-out again', async (ctx) => {
  const relay = await startTestRelay({ overrides: { 'redis.url': ctx.redis.url, 'redis.keyPrefix': 'outage-a:' } });
  ctx.relays.push(relay);
  const gw = await connectGateway(relay.mqttUrl, 'gw-out-a', await addGateway(relay, 'gw-out-a', 'acme'));
  const sub = await subscribeEvents(relay, await tokenFor('acme'));
  const [e1, e2, e3] = analysisFlow('gw-out-a');
  assert.is(await publishEvent(gw, 'gw-out-a', e1!), 'ok');
  await sub.waitFor(1);
  assert.equal((await health(relay)).redis?.fanout.up, true);

  await ctx.redis.stop();
  await eventually(async () => (await health(relay)).redis?.fanout.up === false, 5000, 'health to see redis gone');
  // Acknowledged once stored (the shared duplicate window and the PUBLISH each give up after 1 s).
  assert.is(await publishEvent(gw, 'gw-out-a', e2!), 'ok');
  assert.is(await relay.storage.countEvents({ gatewayId: 'gw-out-a' }), 2);
  await eventually(async () => relay.deps.ingest.stats.fanoutErrors >= 1, 5000, 'the failed publish counted');
  const h = await health(relay);
  assert.is(h.status, 'degraded');
  assert.ok(h.reasons.some((r) => r.startsWith('fan-out through redis is failing')), h.reasons.join('; '));
  assert.ok((h.redis?.fanout.errors ?? 0) >= 1);
  assert.match((await relay.app.inject({ url: '/metrics' })).body, /^tu_relay_fanout_errors_total [1-9]/m);
  assert.is(await readyStatus(relay), 200);

  ctx.redis = await startRedis(ctx.redis.port);
  await eventually(async () => (await health(relay)).redis?.fanout.up === true, 15_000, 'the fan-out to reconnect');
  assert.is((await health(relay)).status, 'ok');
  assert.is(await publishEvent(gw, 'gw-out-a', e3!), 'ok');
  // The subscription made before the outage was subscribed again in Redis.
  await sub.waitFor(2, 5000);
  assert.equal(sub.events.map((e) => e.id), [e1!.id, e3!.id]);
  await sub.close();
  gw.end(true);
});

test('a relay starts while Redis is down: it ingests and stores, reports the fan-out failing, and fans out once Redis is there', async (ctx) => {
  await ctx.redis.stop();
  const relay = await startTestRelay({ overrides: { 'redis.url': ctx.redis.url, 'redis.keyPrefix': 'outage-b:' } });
  ctx.relays.push(relay);
  const gw = await connectGateway(relay.mqttUrl, 'gw-out-b', await addGateway(relay, 'gw-out-b', 'acme'));
  const [e1, e2] = analysisFlow('gw-out-b');
  assert.is(await publishEvent(gw, 'gw-out-b', e1!), 'ok');
  assert.is(await relay.storage.countEvents({ gatewayId: 'gw-out-b' }), 1);
  const h = await health(relay);
  assert.is(h.redis?.fanout.up, false);
  assert.is(h.status, 'degraded');
  assert.is(await readyStatus(relay), 200);

  ctx.redis = await startRedis(ctx.redis.port);
  await eventually(async () => (await health(relay)).redis?.fanout.up === true, 15_000, 'the fan-out to connect');
  const sub = await subscribeEvents(relay, await tokenFor('acme'));
  assert.is(await publishEvent(gw, 'gw-out-b', e2!), 'ok');
  await sub.waitFor(1, 5000);
  assert.equal(sub.events.map((e) => e.id), [e2!.id]);
  await sub.close();
  gw.end(true);
});

test('a relay stops while Redis is down, at once: it does not wait for a Redis that may never come back', async (ctx) => {
  const relay = await startTestRelay({ overrides: { 'redis.url': ctx.redis.url, 'redis.keyPrefix': 'outage-c:' } });
  const gw = await connectGateway(relay.mqttUrl, 'gw-out-c', await addGateway(relay, 'gw-out-c', 'acme'));
  await ctx.redis.stop();
  await eventually(async () => (await health(relay)).redis?.fanout.up === false, 5000, 'health to see redis gone');
  gw.end(true);
  const t0 = Date.now();
  const stopping = relay.stop();
  const stopped = await Promise.race([stopping.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 8000))]);
  const ms = Date.now() - t0;
  ctx.redis = await startRedis(ctx.redis.port);
  // A stop that waits for Redis ends once it is back: the suite goes on either way.
  if (!stopped) await Promise.race([stopping, new Promise((r) => setTimeout(r, 15_000))]);
  assert.ok(stopped, 'relay.stop() finished within 8 s with Redis down');
  assert.ok(ms < 5000, `stopped in ${ms} ms`);
});

test.run();
