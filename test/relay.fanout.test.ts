import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { MqttClient } from 'mqtt';
import type { Relay, Storage } from '@tu/relay';
import { until } from './support/harness.js';
import { addGateway, analysisFlow, connectGateway, publishEvent, startTestRelay, subscribeEvents, tokenFor } from './support/relay.js';

/** The storage with every batch write held until released (a database that is as slow as the test wants). */
function gatedStorage(s: Storage): Storage & { release(): void; held: () => number } {
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  let held = 0;
  const close = () => {
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    gate = { promise, open };
  };
  close();
  const overrides: Record<string, unknown> = {
    recordEvents: async (batch: Parameters<Storage['recordEvents']>[0]) => {
      held++;
      await gate!.promise;
      held--;
      return s.recordEvents(batch);
    },
    release: () => gate!.open(),
    held: () => held,
  };
  return new Proxy(s, {
    get(target, key, receiver) {
      if (typeof key === 'string' && key in overrides) return overrides[key];
      const v: unknown = Reflect.get(target, key, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Storage & { release(): void; held: () => number };
}

type Ctx = { relay: Relay; storage: ReturnType<typeof gatedStorage>; gw: MqttClient };
const test = suite<Ctx>('relay: persistence never blocks fan-out');
test.before(async (ctx) => {
  ctx.relay = await startTestRelay({
    wrapStorage: (s) => {
      ctx.storage = gatedStorage(s);
      return ctx.storage;
    },
  });
  ctx.gw = await connectGateway(ctx.relay.mqttUrl, 'gw-slow', await addGateway(ctx.relay, 'gw-slow', 'acme'));
});
test.after(async (ctx) => {
  ctx.storage.release();
  ctx.gw.end(true);
  await ctx.relay.stop();
});

test('while the database is stalled, subscribers still get every event at once; storage catches up after', async (ctx) => {
  const sub = await subscribeEvents(ctx.relay, await tokenFor('acme'));
  const flow = [...analysisFlow('gw-slow'), ...analysisFlow('gw-slow', { outcome: 'failed' })];
  const acks = flow.map((e) => publishEvent(ctx.gw, 'gw-slow', e));
  const t0 = performance.now();
  await sub.waitFor(flow.length, 3000);
  const fanoutMs = performance.now() - t0;
  assert.equal(sub.events.map((e) => e.id), flow.map((e) => e.id));
  // Nothing is stored yet and no PUBACK went out: the gateway keeps the events until they are.
  assert.is(await ctx.relay.storage.countEvents(), 0);
  assert.ok(ctx.storage.held() >= 1);
  assert.ok(ctx.relay.deps.queue.depth > 0);
  const health = (await ctx.relay.app.inject({ url: '/api/v1/health' })).json() as { storage: { queueDepth: number } };
  assert.ok(health.storage.queueDepth > 0);
  ctx.storage.release();
  assert.equal(await Promise.all(acks), flow.map(() => 'ok'));
  assert.is(await ctx.relay.storage.countEvents(), flow.length);
  await until(() => ctx.relay.deps.queue.depth === 0, 5000, 'queue drained');
  assert.ok(fanoutMs < 1000, `fan-out took ${fanoutMs.toFixed(1)} ms with storage stalled`);
  await sub.close();
});

test.run();
