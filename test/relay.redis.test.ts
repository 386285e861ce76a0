import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Relay } from '@tu/relay';
import { tmpDir } from './support/harness.js';
import { addGateway, analysisFlow, connectGateway, publishEvent, startTestRelay, subscribeEvents, tokenFor } from './support/relay.js';

type Ctx = { a: Relay; b: Relay };
const test = suite<Ctx>('relay: cross-instance fan-out through Redis (mqemitter-redis)');
const REDIS = process.env.TU_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

test.before(async (ctx) => {
  const storage = `sqlite:${path.join(tmpDir('tu-relay-redis-'), 'shared.sqlite')}`;
  ctx.a = await startTestRelay({ overrides: { 'storage.url': storage, 'redis.url': REDIS } });
  ctx.b = await startTestRelay({ overrides: { 'storage.url': storage, 'redis.url': REDIS } });
});
test.after(async (ctx) => {
  await ctx.a.stop();
  await ctx.b.stop();
});

test('an event ingested by instance A reaches a subscriber connected to instance B, in order', async (ctx) => {
  const tenant = `redis-${process.pid}-${Date.now()}`;
  const gwId = `gw-redis-${process.pid}`;
  const gw = await connectGateway(ctx.a.mqttUrl, gwId, await addGateway(ctx.a, gwId, tenant));
  const sub = await subscribeEvents(ctx.b, await tokenFor(tenant));
  const flow = analysisFlow(gwId);
  for (const e of flow) assert.is(await publishEvent(gw, gwId, e), 'ok');
  await sub.waitFor(flow.length);
  assert.equal(sub.events.map((e) => e.id), flow.map((e) => e.id));
  await sub.close();
  gw.end(true);
});

test.run();
