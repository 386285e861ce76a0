import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import amqp from 'amqplib';
import type { MqttClient } from 'mqtt';
import { topics } from '@tu/shared';
import { rabbitmqAuthBaseUrl, type Relay } from '@tu/relay';
import { tmpDir, until } from './support/harness.js';
import { freePort, startProcess, stopProcess } from './support/processes.js';
import { startRabbitCluster, type RabbitCluster } from './support/rabbitmq.js';
import { analysisFlow, connectGateway, dropPgSchema, JWT_SECRET, PG_BASE, pgSchemaName, publishEvent, publishRaw, startTestRelay, type Envelope } from './support/relay.js';

const AUTH_SECRET = 'broker-auth-secret-0123456789abcdef';
const RELAY_PASSWORD = 'relay-amqp-password-0123456789';
/** The broker's auth cache TTL: the revocation cut-off under test. */
const CACHE_TTL_MS = 2000;
const QUEUE = 'tu.relay.ingress';

type Health = { ingress: { rabbitmq?: { acked: number; deadLettered: number; revoked: number } } };
type Ctx = {
  cluster: RabbitCluster;
  schema: string;
  a: Relay;
  b: ChildProcess | undefined;
  bUrl: string;
  secrets: Record<string, string>;
  gws: MqttClient[];
  published: Envelope[];
};
const test = suite<Ctx>('relay ingress through a 3-node RabbitMQ cluster (quorum queue, competing relays, auth by the relay)');

const health = async (url: string): Promise<Health> => (await fetch(`${url}/api/v1/health`)).json() as Promise<Health>;
const stats = (h: Health) => h.ingress.rabbitmq ?? { acked: 0, deadLettered: 0, revoked: 0 };

test.before(async (ctx) => {
  try {
    await setup(ctx);
  } catch (err) {
    // uvu reports only the after hook's error otherwise.
    console.error('setup failed:', err);
    throw err;
  }
});

async function setup(ctx: Ctx): Promise<void> {
  ctx.schema = pgSchemaName();
  const storage = `${PG_BASE}?schema=${ctx.schema}`;
  const aPort = await freePort();
  const bPort = await freePort();
  ctx.bUrl = `http://127.0.0.1:${bPort}`;
  // Every node asks relay A (a load balancer in front of all instances in production): B is the one killed below.
  ctx.cluster = await startRabbitCluster({ nodes: 3, authBaseUrl: rabbitmqAuthBaseUrl(`http://127.0.0.1:${aPort}`, AUTH_SECRET), cacheTtlMs: CACHE_TTL_MS });
  const rabbitmq = { urls: ctx.cluster.amqpUrls, password: RELAY_PASSWORD, authSecret: AUTH_SECRET, cacheTtlMs: CACHE_TTL_MS, prefetch: 50, retryDelayMs: 200, reconnectInitialMs: 200, reconnectMaxMs: 2000 };
  ctx.a = await startTestRelay({ overrides: { 'http.port': aPort, 'storage.url': storage, 'ingress.mode': 'rabbitmq', 'ingress.rabbitmq': rabbitmq } });
  // Relay B: a process of its own (kill -9 below), same database, nodes in another order.
  const dir = tmpDir('tu-relay-b-');
  const config = {
    dataDir: dir,
    log: { level: 'warn' },
    http: { host: '127.0.0.1', port: bPort },
    storage: { url: storage },
    jwt: { secret: JWT_SECRET },
    ingress: { mode: 'rabbitmq', rabbitmq: { ...rabbitmq, urls: [...ctx.cluster.amqpUrls].reverse() } },
  };
  fs.writeFileSync(path.join(dir, 'relay.json'), JSON.stringify(config));
  ctx.b = await startProcess('relay/dist/main.js', ['--config', path.join(dir, 'relay.json')], 'relay: ');
  ctx.secrets = {};
  await ctx.a.registry.addTenant('acme');
  for (const id of ['gw-r0', 'gw-r1', 'gw-r2', 'gw-rv', 'gw-rc', 'gw-rt']) ctx.secrets[id] = await ctx.a.registry.addGateway(id, 'acme');
  ctx.gws = [];
  ctx.published = [];
}

test.after(async (ctx) => {
  for (const c of ctx.gws ?? []) c.end(true);
  if (ctx.b) await stopProcess(ctx.b, 'SIGKILL');
  await ctx.a?.stop();
  await ctx.cluster?.stop();
  if (ctx.schema) await dropPgSchema(ctx.schema);
});

/** Publishes each gateway's flows (QoS 1, one at a time per gateway); resolves with what was acknowledged. */
async function publishFlows(ctx: Ctx, clients: { id: string; c: MqttClient }[], flowsPerGateway: number, during?: (i: number) => Promise<void>): Promise<Envelope[]> {
  const acked: Envelope[] = [];
  await Promise.all(
    clients.map(async ({ id, c }) => {
      for (let i = 0; i < flowsPerGateway; i++) {
        if (during) await during(i);
        for (const e of analysisFlow(id)) {
          assert.is(await publishEvent(c, id, e), 'ok', `PUBACK for ${e.type} of ${id}`);
          acked.push(e);
        }
      }
    }),
  );
  ctx.published.push(...acked);
  return acked;
}

async function assertStoredOnce(ctx: Ctx, events: Envelope[], what: string): Promise<void> {
  const total = ctx.published.length;
  const deadline = Date.now() + 20_000;
  while ((await ctx.a.storage.countEvents()) < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.is(await ctx.a.storage.countEvents(), total, `${what}: every acknowledged event stored, none twice`);
  const ids = new Set(await ctx.a.storage.recentEventIds(total + 100));
  assert.ok(events.every((e) => ids.has(e.id)), `${what}: each event's own row is there`);
}

test('gateways on different nodes: every event stored once, each taken by one of the two relays', async (ctx) => {
  const clients = await Promise.all(['gw-r0', 'gw-r1', 'gw-r2'].map(async (id, i) => ({ id, c: await connectGateway(ctx.cluster.mqttUrls[i]!, id, ctx.secrets[id]!) })));
  ctx.gws.push(...clients.map((x) => x.c));
  const events = await publishFlows(ctx, clients, 6);
  await assertStoredOnce(ctx, events, 'both relays up');
  // Acknowledged just after storage answers: wait for the last acks.
  let a = stats(await health(ctx.a.url));
  let b = stats(await health(ctx.bUrl));
  for (const end = Date.now() + 5000; a.acked + b.acked < events.length && Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 50));
    [a, b] = [stats(await health(ctx.a.url)), stats(await health(ctx.bUrl))];
  }
  console.log(`  ${events.length} events: relay A acknowledged ${a.acked}, relay B ${b.acked}`);
  assert.is(a.acked + b.acked, events.length, 'each event acknowledged by exactly one relay');
  assert.ok(a.acked > 0 && b.acked > 0, 'both relays took a share');
  // Status messages fed presence.
  await until(() => ctx.a.deps.presence.online('gw-r0') !== undefined || ctx.a.deps.presence.online('gw-r1') !== undefined, 5000, 'a status seen by relay A');
});

test('wrong secret, AMQP login and another client id are refused; a publish under another gateway is refused and never stored', async (ctx) => {
  const url = ctx.cluster.mqttUrls[1]!;
  assert.ok(await connectGateway(url, 'gw-r1', 'wrong-secret-0123456789').then(() => false, () => true), 'wrong secret refused');
  assert.ok(await connectGateway(url, 'gw-r1', ctx.secrets['gw-r1']!, { clientId: 'gw-r2' }).then(() => false, () => true), 'client id of another gateway refused');
  const amqpLogin = await amqp.connect(ctx.cluster.amqpUrls[0]!.replace('//', `//gw-r1:${encodeURIComponent(ctx.secrets['gw-r1']!)}@`)).then(
    async (c) => (await c.close(), false),
    () => true,
  );
  assert.ok(amqpLogin, 'a gateway cannot log in over AMQP');
  const c = await connectGateway(url, 'gw-r1', ctx.secrets['gw-r1']!);
  ctx.gws.push(c);
  const before = await ctx.a.storage.countEvents();
  const forged = analysisFlow('gw-r2')[0]!;
  assert.is(await publishEvent(c, 'gw-r1', forged, topics.event('gw-r2', forged.type)), 'refused', 'the broker drops the connection');
  const own = await connectGateway(url, 'gw-r1', ctx.secrets['gw-r1']!);
  ctx.gws.push(own);
  const mine = analysisFlow('gw-r1')[0]!;
  assert.is(await publishEvent(own, 'gw-r1', mine), 'ok');
  ctx.published.push(mine);
  await assertStoredOnce(ctx, [mine], 'after a forged publish');
  assert.is(await ctx.a.storage.countEvents(), before + 1);
  assert.ok(!(await ctx.a.storage.recentEventIds(1000)).includes(forged.id));
});

test('bad input is dead-lettered once (no redelivery loop); the auth routes answer only with the secret', async (ctx) => {
  const c = await connectGateway(ctx.cluster.mqttUrls[2]!, 'gw-r2', ctx.secrets['gw-r2']!);
  ctx.gws.push(c);
  const dead = async () => stats((await health(ctx.a.url)) as Health).deadLettered + stats(await health(ctx.bUrl)).deadLettered;
  const before = await dead();
  assert.is(await publishRaw(c, topics.event('gw-r2', 'analysis.started'), '{not json'), 'ok');
  const deadline = Date.now() + 10_000;
  while ((await dead()) === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 500));
  assert.is((await dead()) - before, 1, 'dead-lettered exactly once');
  const conn = await amqp.connect(ctx.cluster.amqpUrls[1]!.replace('//', `//tu-relay:${RELAY_PASSWORD}@`));
  const ch = await conn.createChannel();
  assert.ok((await ch.checkQueue(`${QUEUE}.dead`)).messageCount >= 1, 'in the dead-letter queue');
  await conn.close();

  const ask = (secret: string, body: Record<string, string>) =>
    fetch(`${rabbitmqAuthBaseUrl(ctx.a.url, secret)}/user`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
  const right = { username: 'gw-rt', password: ctx.secrets['gw-rt']!, client_id: 'gw-rt' };
  assert.is((await ask('not-the-secret-0123456789abc', right)).status, 404, 'no oracle without the secret');
  assert.is(await (await ask(AUTH_SECRET, right)).text(), 'allow');
  assert.is((await ask(AUTH_SECRET, { username: 'gw-rt' })).status, 400, 'a malformed question is refused');
  // Failed logins are throttled per gateway: past the burst, guesses are refused unchecked (no
  // scrypt), while the secret verified above still gets in (no lock-out by whoever guesses).
  const throttled = () => health(ctx.a.url).then((h) => (h as { ingress: { brokerAuth: { throttled: number } } }).ingress.brokerAuth.throttled);
  const t0 = await throttled();
  for (let i = 0; i < 12; i++) assert.is(await (await ask(AUTH_SECRET, { ...right, password: `guess-${i}` })).text(), 'deny');
  assert.ok((await throttled()) - t0 >= 2, 'guesses past the burst are throttled');
  assert.is(await (await ask(AUTH_SECRET, right)).text(), 'allow', 'the known secret still gets in');
});

test('kill -9 of a broker node mid-stream: nothing acknowledged is lost (quorum queue), relays reconnect', async (ctx) => {
  // Node 0 holds the queue's leader (declared there first) and relay A's connection.
  const clients = await Promise.all(['gw-r0', 'gw-r1'].map(async (id, i) => ({ id, c: await connectGateway(ctx.cluster.mqttUrls[i + 1]!, id, ctx.secrets[id]!) })));
  ctx.gws.push(...clients.map((x) => x.c));
  let killed = false;
  const events = await publishFlows(ctx, clients, 6, async (i) => {
    if (i === 2 && !killed) {
      killed = true;
      await ctx.cluster.killNode(0);
    }
  });
  await assertStoredOnce(ctx, events, 'after kill -9 of node 0');
  await until(() => ctx.a.deps.ingress()?.connected === true, 15_000, 'relay A reconnected');
  const a = ctx.a.deps.ingress()?.rabbitmq;
  assert.ok(a && a.reconnects >= 1 && a.url !== ctx.cluster.amqpUrls[0], 'relay A moved to another node');
});

test('kill -9 of a relay instance mid-stream: nothing lost, no duplicate rows', async (ctx) => {
  const clients = await Promise.all(['gw-r1', 'gw-r2'].map(async (id, i) => ({ id, c: await connectGateway(ctx.cluster.mqttUrls[i + 1]!, id, ctx.secrets[id]!) })));
  ctx.gws.push(...clients.map((x) => x.c));
  const bBefore = stats(await health(ctx.bUrl)).acked;
  let killed = false;
  const events = await publishFlows(ctx, clients, 6, async (i) => {
    if (i === 2 && !killed) {
      killed = true;
      await stopProcess(ctx.b!, 'SIGKILL');
      ctx.b = undefined;
    }
  });
  await assertStoredOnce(ctx, events, 'after kill -9 of relay B');
  console.log(`  relay B acknowledged ${bBefore} before this test; killed mid-stream of ${events.length}`);
});

test('a revoked gateway is refused at its next connection and cut off within the cache TTL', async (ctx) => {
  // gw-rv keeps publishing on its open connection; gw-rc tries new connections (a new connection
  // with a gateway's client id takes over its old one, so they are two gateways).
  const id = 'gw-rv';
  const c = await connectGateway(ctx.cluster.mqttUrls[1]!, id, ctx.secrets[id]!);
  ctx.gws.push(c);
  const connectRc = () => connectGateway(ctx.cluster.mqttUrls[2]!, 'gw-rc', ctx.secrets['gw-rc']!).then((x) => (x.end(true), true), () => false);
  assert.ok(await connectRc(), 'gw-rc connects before the revocation (the broker caches that)');
  const sent: { e: Envelope; at: number }[] = [];
  let stop = false;
  const publishing = (async () => {
    while (!stop) {
      const e = analysisFlow(id)[0]!;
      const at = Date.now();
      if ((await publishEvent(c, id, e)) !== 'ok') break;
      sent.push({ e, at });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await new Promise((r) => setTimeout(r, 500));
  const revokedAt = Date.now();
  assert.ok(await ctx.a.registry.revoke(id));
  assert.ok(await ctx.a.registry.revoke('gw-rc'));
  let refusedAfter: number | undefined;
  while (refusedAfter === undefined && Date.now() - revokedAt < CACHE_TTL_MS + 5000) {
    if (!(await connectRc())) refusedAfter = Date.now() - revokedAt;
    else await new Promise((r) => setTimeout(r, 100));
  }
  while (Date.now() - revokedAt < CACHE_TTL_MS + 2000) await new Promise((r) => setTimeout(r, 100));
  stop = true;
  await publishing;
  await until(() => ctx.a.deps.queue.depth === 0, 10_000, 'queue drained');
  await new Promise((r) => setTimeout(r, 1000));
  const stored = new Set(await ctx.a.storage.recentEventIds(100_000));
  const storedSent = sent.filter((s) => stored.has(s.e.id));
  const cutOff = Math.max(...storedSent.map((s) => s.at)) - revokedAt;
  console.log(
    `  revocation (cache TTL ${CACHE_TTL_MS} ms): next connection refused after ${refusedAfter} ms; last stored event published ${cutOff} ms after; ${sent.length - storedSent.length} of ${sent.length} events dead-lettered; the open connection ${c.connected ? 'stays open' : 'was closed'}`,
  );
  assert.ok(refusedAfter !== undefined && refusedAfter <= CACHE_TTL_MS + 1500, `next connection refused within the TTL (${refusedAfter} ms)`);
  assert.ok(cutOff <= CACHE_TTL_MS + 1000, `cut off within the TTL (${cutOff} ms)`);
  const late = sent.filter((s) => s.at > revokedAt + CACHE_TTL_MS + 1000);
  assert.ok(late.length > 0, 'the gateway kept publishing past the cut-off (so the check means something)');
  assert.ok(late.every((s) => !stored.has(s.e.id)), 'nothing published after the cut-off is stored');
});

test.run();
