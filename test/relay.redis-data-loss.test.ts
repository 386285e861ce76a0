/**
 * Redis losing its data under two relay instances (a restart without persistence, FLUSHALL, a
 * failover to a lagging replica): a gateway stays connected to A all along, and B's dashboard
 * must not call it offline until it reconnects. Our own redis-server (test/support/redis.ts),
 * flushed and restarted by the test; both instances share a PostgreSQL schema of the test.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import type { MqttClient } from 'mqtt';
import type { Relay } from '@tu/relay';
import { startRedis } from './support/redis.js';
import { addGateway, analysisFlow, connectGateway, dropPgSchema, gql, PG_BASE, pgSchemaName, publishEvent, startTestRelay, tokenFor } from './support/relay.js';

type Ctx = { redis: Awaited<ReturnType<typeof startRedis>>; schema: string; relays: Relay[]; clients: MqttClient[] };
const test = suite<Ctx>('relay: presence after Redis lost its data (redis.url)');
const PREFIX = 'loss:';
const TENANT = 'loss';

test.before(async (ctx) => {
  ctx.redis = await startRedis();
  ctx.schema = pgSchemaName();
  ctx.relays = [];
  ctx.clients = [];
});
test.after(async (ctx) => {
  for (const c of ctx.clients) c.end(true);
  for (const r of ctx.relays) await r.stop();
  await ctx.redis.stop();
  await dropPgSchema(ctx.schema);
});

async function twoRelays(ctx: Ctx, livenessMs: number): Promise<[Relay, Relay]> {
  const overrides = { 'storage.url': `${PG_BASE}?schema=${ctx.schema}`, 'redis.url': ctx.redis.url, 'redis.keyPrefix': PREFIX, 'redis.livenessMs': livenessMs };
  const a = await startTestRelay({ overrides });
  ctx.relays.push(a);
  const b = await startTestRelay({ overrides });
  ctx.relays.push(b);
  return [a, b];
}

async function onlineVia(relay: Relay, id: string): Promise<boolean | null> {
  const r = await gql<{ gateway: { online: boolean | null } }>(relay, await tokenFor(TENANT), 'query ($id: ID!) { gateway(id: $id) { online } }', { id });
  assert.ok(r.data?.gateway, JSON.stringify(r));
  return r.data.gateway.online;
}

async function eventually(pred: () => Promise<boolean>, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - t0;
}

const withRedis = async <T>(url: string, f: (r: Redis) => Promise<T>): Promise<T> => {
  const r = new Redis(url);
  try {
    return await f(r);
  } finally {
    r.disconnect();
  }
};

test('a hash holding lastSeen alone (written by an event after the data loss) is not read as "offline" by an instance that does not hold the connection', async (ctx) => {
  // A liveness of 10 minutes: no heartbeat re-asserts anything during this test.
  const [a, b] = await twoRelays(ctx, 600_000);
  const id = 'gw-loss-read';
  const gw = await connectGateway(a.mqttUrl, id, await addGateway(a, id, TENANT));
  ctx.clients.push(gw);
  await eventually(async () => (await onlineVia(b, id)) === true, 5000, 'online through B');
  await a.deps.queue.flush();
  await withRedis(ctx.redis.url, (r) => r.flushall());
  // The gateway keeps working: its event recreates the hash with lastSeen only.
  assert.is(await publishEvent(gw, id, analysisFlow(id)[0]!), 'ok');
  const hash = await withRedis(ctx.redis.url, async (r) => {
    let h: Record<string, string> = {};
    await eventually(async () => (h = await r.hgetall(`${PREFIX}p:${id}`)).lastSeen !== undefined, 5000, 'lastSeen written again');
    return h;
  });
  assert.is(hash.online, undefined, 'the scenario: no online field');
  // B is the embedded broker's whole truth only for its own connections: the stored row answers.
  assert.is(await onlineVia(b, id), true, 'online through B');
  assert.is(await onlineVia(a, id), true, 'online through A');
});

test('the instance holding a connection re-asserts it in Redis within redis.livenessMs after FLUSHALL or a restart without persistence; a gateway that left stays offline', async (ctx) => {
  const livenessMs = 1000;
  const [a, b] = await twoRelays(ctx, livenessMs);
  const id = 'gw-loss-heal';
  const gw = await connectGateway(a.mqttUrl, id, await addGateway(a, id, TENANT));
  ctx.clients.push(gw);
  const key = `${PREFIX}p:${id}`;
  const healed = (r: Redis) => async () => {
    const [online, heldBy] = await r.hmget(key, 'online', 'heldBy');
    return online === '1' && heldBy !== null && (await r.exists(`${PREFIX}i:${heldBy}`)) === 1;
  };
  await withRedis(ctx.redis.url, async (r) => {
    await eventually(healed(r), 5000, 'online, held by A');
    const holder = await r.hget(key, 'heldBy');
    await r.flushall();
    const ms = await eventually(healed(r), 3 * livenessMs, 're-asserted after FLUSHALL');
    assert.ok(ms <= livenessMs, `healed in ${ms} ms (redis.livenessMs ${livenessMs})`);
    assert.is(await r.hget(key, 'heldBy'), holder, 'held by A again');
  });
  assert.is(await onlineVia(b, id), true, 'online through B');

  // Redis restarted without persistence: empty, and every instance reconnects to it.
  const port = ctx.redis.port;
  await ctx.redis.stop();
  ctx.redis = await startRedis(port);
  await withRedis(ctx.redis.url, (r) => eventually(healed(r), 10_000, 're-asserted after the restart'));
  assert.is(await onlineVia(b, id), true, 'online through B after the restart');

  // It leaves A: offline, and the heartbeats do not bring it back.
  gw.end(true);
  await eventually(async () => (await onlineVia(b, id)) === false, 5000, 'offline through B');
  await new Promise((r) => setTimeout(r, 2 * livenessMs));
  assert.is(await onlineVia(b, id), false, 'still offline through B');
  assert.is(await withRedis(ctx.redis.url, (r) => r.hget(key, 'online')), '0');
});

test.run();
