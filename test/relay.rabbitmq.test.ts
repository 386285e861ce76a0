import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import amqp from 'amqplib';
import type { MqttClient } from 'mqtt';
import { ManualClock, topics } from '@tu/shared';
import { ConfigError, loadRelayConfig, rabbitmqAuthBaseUrl, type Relay, type RelayConfig, type Storage } from '@tu/relay';
import { tmpDir, until } from './support/harness.js';
import { runCommand } from '@tu/relay/internal/cli/commands';
import { rabbitmqConnectionCloser, throttledCloser } from '@tu/relay/internal/ingress/rabbitmq-management';
import { freePort, startProcess, stopProcess } from './support/processes.js';
import { startRabbitCluster, type RabbitCluster } from './support/rabbitmq.js';
import { analysisFlow, connectGateway, dropPgSchema, JWT_SECRET, PG_BASE, pgSchemaName, publishEvent, publishRaw, relayTestConfig, startTestRelay, type Envelope } from './support/relay.js';

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
  /** The relay CLI's view (same database and settings as the relays). */
  cliConfig: RelayConfig;
  /** Relay A's config overrides (database, RabbitMQ settings). */
  overrides: Record<string, unknown>;
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
  ctx.cluster = await startRabbitCluster({ nodes: 3, authBaseUrl: rabbitmqAuthBaseUrl(`http://127.0.0.1:${aPort}`, AUTH_SECRET), cacheTtlMs: CACHE_TTL_MS, management: true });
  // Revoked gateways' connections are closed through the management API of any node (tried in turn).
  const management = { urls: ctx.cluster.managementUrls, timeoutMs: 3000, closeIntervalMs: 1000 };
  const rabbitmq = { urls: ctx.cluster.amqpUrls, password: RELAY_PASSWORD, authSecret: AUTH_SECRET, cacheTtlMs: CACHE_TTL_MS, prefetch: 50, retryDelayMs: 200, reconnectInitialMs: 200, reconnectMaxMs: 2000, management };
  const overrides = { 'http.port': aPort, 'storage.url': storage, 'ingress.mode': 'rabbitmq', 'ingress.rabbitmq': rabbitmq };
  ctx.cliConfig = relayTestConfig(overrides);
  ctx.overrides = overrides;
  ctx.a = await startTestRelay({ overrides });
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
  const ids = new Set((await ctx.a.storage.recentEventIds(total + 100)).map((k) => k.id));
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
  assert.ok(!(await ctx.a.storage.recentEventIds(1000)).some((k) => k.id === forged.id));
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
  // The broker config the CLI prints is the one these nodes run (test/support/rabbitmq.ts writes rabbitmqBrokerConf).
  const conf = await runCommand(ctx.cliConfig, ['rabbitmq', 'config'], new Map([['relay-url', ctx.a.url]]));
  assert.ok(conf.includes(`auth_http.user_path = ${rabbitmqAuthBaseUrl(ctx.a.url, AUTH_SECRET)}/user`) && conf.includes(`auth_cache.cache_ttl = ${CACHE_TTL_MS}`), conf);
  assert.ok(conf.includes('rabbitmq_management]'), 'management configured: its plugin enabled');
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

test('config: rabbitmq mode needs its settings; TU_RELAY_RABBITMQ_* override them', () => {
  const base = { 'jwt.secret': JWT_SECRET, 'ingress.mode': 'rabbitmq' };
  assert.throws(() => loadRelayConfig({ env: {}, overrides: base }), (e: Error) => e instanceof ConfigError && e.message.includes('ingress.rabbitmq'));
  assert.throws(
    () => loadRelayConfig({ env: {}, overrides: { ...base, 'ingress.rabbitmq': { urls: ['amqp://u:p@h:5672'], password: RELAY_PASSWORD, authSecret: AUTH_SECRET } } }),
    (e: Error) => e instanceof ConfigError && e.message.includes('without credentials'),
  );
  const env = { TU_RELAY_RABBITMQ_URLS: 'amqp://n1:5672, amqp://n2:5672', TU_RELAY_RABBITMQ_PASSWORD: RELAY_PASSWORD, TU_RELAY_RABBITMQ_AUTH_SECRET: AUTH_SECRET, TU_RELAY_RABBITMQ_CACHE_TTL_MS: '5000' };
  const r = loadRelayConfig({ env, overrides: base }).ingress.rabbitmq!;
  assert.equal(r.urls, ['amqp://n1:5672', 'amqp://n2:5672']);
  assert.is(r.cacheTtlMs, 5000);
  assert.is(r.queue, QUEUE);
  assert.is(r.username, 'tu-relay');
  assert.is(r.management, undefined, 'closing connections through the management API is optional');
  const m = loadRelayConfig({ env: { ...env, TU_RELAY_RABBITMQ_MANAGEMENT_URLS: 'http://n1:15672,https://n2:15671', TU_RELAY_RABBITMQ_MANAGEMENT_CLOSE_INTERVAL_MS: '2000' }, overrides: base }).ingress.rabbitmq!.management;
  assert.equal(m, { urls: ['http://n1:15672', 'https://n2:15671'], timeoutMs: 5000, closeIntervalMs: 2000 });
  assert.throws(
    () => loadRelayConfig({ env: { ...env, TU_RELAY_RABBITMQ_MANAGEMENT_URLS: 'http://admin:pw@n1:15672' }, overrides: base }),
    (e: Error) => e instanceof ConfigError && e.message.includes('without credentials'),
  );
});

test('auth routes: resource, vhost and topic answers follow the contract; a revoked gateway may write nothing', async (ctx) => {
  const ask = async (what: string, body: Record<string, string>) =>
    (await fetch(`${rabbitmqAuthBaseUrl(ctx.a.url, AUTH_SECRET)}/${what}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ vhost: '/', ...body }).toString() })).text();
  const res = (username: string, resource: string, name: string, permission: string) => ask('resource', { username, resource, name, permission });
  assert.is(await res('gw-r0', 'exchange', 'amq.topic', 'write'), 'allow');
  assert.is(await res('gw-r0', 'exchange', 'amq.topic', 'read'), 'deny', 'a gateway reads nothing');
  assert.is(await res('gw-r0', 'queue', QUEUE, 'read'), 'deny');
  assert.is(await res('gw-r0', 'queue', 'mqtt-subscription-gw-r0qos1', 'configure'), 'deny', 'no subscription queue');
  assert.is(await res('tu-relay', 'queue', QUEUE, 'configure'), 'allow');
  assert.is(await res('tu-relay', 'queue', `${QUEUE}.dead`, 'read'), 'allow');
  assert.is(await res('tu-relay', 'queue', 'another', 'read'), 'deny');
  assert.is(await res('tu-relay', 'exchange', 'amq.topic', 'write'), 'deny', 'the relay publishes nothing to gateways');
  assert.is(await ask('vhost', { username: 'gw-r0', vhost: 'other' }), 'deny');
  assert.is(await ask('vhost', { username: 'gw-r0' }), 'allow');
  const topic = (username: string, routing_key: string, permission = 'write') => ask('topic', { username, resource: 'topic', name: 'amq.topic', permission, routing_key });
  assert.is(await topic('gw-r0', 'tu.gw-r0.evt.analysis.completed'), 'allow');
  assert.is(await topic('gw-r0', 'tu.gw-r1.evt.analysis.completed'), 'deny', "another gateway's key");
  assert.is(await topic('tu-relay', 'tu.*.evt.#', 'read'), 'allow', 'the relay binds its keys');
  assert.is(await topic('gw-unknown', 'tu.gw-unknown.evt.analysis.completed'), 'deny', 'an unregistered gateway');
  assert.is(await ask('user', { username: 'tu-relay', password: 'not-the-relay-password' }), 'deny');
  assert.is(await ask('user', { username: 'tu-relay', password: RELAY_PASSWORD }), 'allow administrator', 'with management configured, the tag its API needs to close others\' connections');
  assert.is(await ask('user', { username: 'gw-r0', password: ctx.secrets['gw-r0']!, client_id: 'gw-r0' }), 'allow', 'gateways get no tag');
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

test('a relay whose registry cannot be read requeues after a delay; another relay stores the events once', async (ctx) => {
  // Relay C: a third consumer whose database reads fail (relay A keeps answering the broker).
  let failReads = true;
  const wrapStorage = (st: Storage): Storage =>
    new Proxy(st, {
      get(t, p) {
        if (p === 'getGateway') return (id: string) => (failReads ? Promise.reject(new Error('database unreachable (test)')) : t.getGateway(id));
        const v: unknown = Reflect.get(t, p, t);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  const relayC = await startTestRelay({ overrides: { ...ctx.overrides, 'http.port': 0 }, wrapStorage });
  try {
    const c = await connectGateway(ctx.cluster.mqttUrls[2]!, 'gw-r1', ctx.secrets['gw-r1']!);
    ctx.gws.push(c);
    const events = await publishFlows(ctx, [{ id: 'gw-r1', c }], 4);
    await assertStoredOnce(ctx, events, 'with a failing relay among the consumers');
    const cStats = relayC.deps.ingress()!.rabbitmq!;
    console.log(`  relay C (registry unreadable): ${cStats.delivered} deliveries, ${cStats.requeued} requeued, ${cStats.deadLettered} dead-lettered`);
    assert.ok(cStats.requeued >= 1, 'relay C requeued what it could not check');
    assert.is(cStats.deadLettered, 0, 'nothing dead-lettered for a failing database');
    assert.is(cStats.acked, 0);
  } finally {
    failReads = false;
    await relayC.stop();
  }
});

test('a revoked gateway: its open connection closed through the management API (at once by the CLI, at its next publish otherwise), its reconnect refused', async (ctx) => {
  // gw-rv is revoked straight in storage (as by another tool: no instance is told): relay A's
  // ingress closes it when it dead-letters its next publish. gw-rc is revoked through the CLI,
  // which closes it at once, then tries new connections until the broker's auth cache expires.
  const loop = (id: string, c: MqttClient) => {
    const r = { sent: [] as { e: Envelope; at: number }[], closedAt: undefined as number | undefined, done: Promise.resolve() };
    c.once('close', () => (r.closedAt = Date.now()));
    r.done = (async () => {
      // mqtt.js holds a QoS 1 publish on a closed client (no reconnect) unanswered: stop at the close.
      while (r.closedAt === undefined && c.connected) {
        const e = analysisFlow(id)[0]!;
        const at = Date.now();
        if ((await publishEvent(c, id, e)) !== 'ok') break;
        r.sent.push({ e, at });
        await new Promise((res) => setTimeout(res, 50));
      }
    })();
    return r;
  };
  const rv = await connectGateway(ctx.cluster.mqttUrls[1]!, 'gw-rv', ctx.secrets['gw-rv']!);
  const rc = await connectGateway(ctx.cluster.mqttUrls[2]!, 'gw-rc', ctx.secrets['gw-rc']!);
  ctx.gws.push(rv, rc);
  // A reconnect of gw-rc that the broker still lets in (its auth cache) publishes one event.
  const reconnected: { e: Envelope; at: number }[] = [];
  const connectRc = () =>
    connectGateway(ctx.cluster.mqttUrls[2]!, 'gw-rc', ctx.secrets['gw-rc']!).then(
      async (x) => {
        const e = analysisFlow('gw-rc')[0]!;
        const at = Date.now();
        if ((await publishEvent(x, 'gw-rc', e)) === 'ok') reconnected.push({ e, at });
        x.end(true);
        return true;
      },
      () => false,
    );
  const v = loop('gw-rv', rv);
  const r = loop('gw-rc', rc);
  await new Promise((res) => setTimeout(res, 500));
  const revokedAt = Date.now();
  assert.ok(await ctx.a.registry.revoke('gw-rv'));
  const cliAt = Date.now();
  const out = await runCommand(ctx.cliConfig, ['gateways', 'revoke', 'gw-rc'], new Map());
  const cliDone = Date.now();
  assert.match(out, /closed its 1 open broker connection/);
  await until(() => r.closedAt !== undefined, 5000, "gw-rc's connection closed by the broker");
  const rcCut = r.closedAt! - cliAt;
  await r.done;
  let refusedAfter: number | undefined;
  while (refusedAfter === undefined && Date.now() - cliAt < CACHE_TTL_MS + 5000) {
    if (!(await connectRc())) refusedAfter = Date.now() - cliAt;
    else await new Promise((res) => setTimeout(res, 100));
  }
  await until(() => v.closedAt !== undefined, CACHE_TTL_MS + 5000, "gw-rv's connection closed by the ingress");
  const rvCut = v.closedAt! - revokedAt;
  await v.done;
  await until(() => ctx.a.deps.queue.depth === 0, 10_000, 'queue drained');
  await new Promise((res) => setTimeout(res, 1000));
  const stored = new Set((await ctx.a.storage.recentEventIds(100_000)).map((k) => k.id));
  const dead = (x: typeof v) => x.sent.filter((s) => !stored.has(s.e.id)).length;
  const lastStored = (x: typeof v) => Math.max(...x.sent.filter((s) => stored.has(s.e.id)).map((s) => s.at));
  const a = ctx.a.deps.ingress()!.rabbitmq!;
  console.log(
    `  revocation (cache TTL ${CACHE_TTL_MS} ms): CLI revoke took ${cliDone - cliAt} ms and the broker closed gw-rc's connection ${rcCut} ms after it started; its next connection refused after ${refusedAfter} ms. ` +
      `gw-rv (revoked in storage): closed ${rvCut} ms after, at its next publish (last stored event published ${lastStored(v) - revokedAt} ms after; ${dead(v)} of ${v.sent.length} dead-lettered). Relay A closed ${a.closedConnections} connection(s), ${a.closeFailures} failure(s)`,
  );
  // The command closes it before it returns (its own time is opening storage, and load).
  assert.ok(r.closedAt! - cliDone <= 1000, `the CLI's revoke closes the open connection at once (${r.closedAt! - cliDone} ms after it returned)`);
  assert.ok(refusedAfter !== undefined && refusedAfter <= CACHE_TTL_MS + 1500, `next connection refused within the TTL (${refusedAfter} ms)`);
  assert.ok(rvCut <= CACHE_TTL_MS + 1500, `a revocation made elsewhere closes the connection within the TTL + one publish (${rvCut} ms)`);
  assert.ok(a.closedConnections >= 1 && a.closeFailures === 0, 'the ingress closed it through the management API (node 0, killed above, skipped)');
  assert.ok(v.sent.every((s) => s.at < v.closedAt!) && r.sent.every((s) => s.at < r.closedAt!), 'nothing acknowledged on a connection after its close');
  // Reconnects let in by the broker's auth cache: what they publish is stored only while the
  // relay's own re-read of the registry (every cacheTtlMs) has not seen the revocation yet.
  const storedLater = reconnected.filter((s) => stored.has(s.e.id));
  console.log(`  gw-rc: ${reconnected.length} publishes on reconnects let in by the auth cache, ${storedLater.length} stored (at most ${Math.max(0, ...storedLater.map((s) => s.at - cliAt))} ms after the revoke)`);
  assert.ok(storedLater.every((s) => s.at - cliAt <= CACHE_TTL_MS + 1000), 'nothing gw-rc sends after the TTL is stored');
  assert.ok(lastStored(v) - revokedAt <= CACHE_TTL_MS + 1000, 'gw-rv cut off from storage within the TTL');
});

test('management API: a wrong password or a dead node fails with a reason to act on, the next URL answers; closes are bounded per gateway', async (ctx) => {
  const settings = { urls: [ctx.cluster.managementUrls[1]!], timeoutMs: 3000, closeIntervalMs: 1000 };
  const wrong = await rabbitmqConnectionCloser({ settings, username: 'tu-relay', password: 'not-the-relay-password-0123' }).closeGateway('gw-r0', 'test');
  assert.ok(!wrong.ok && wrong.reason.includes('(401)') && wrong.reason.includes('ingress.rabbitmq.username/password'), JSON.stringify(wrong));
  // Node 0 was killed above: its listener is gone.
  const dead = await rabbitmqConnectionCloser({ settings: { ...settings, urls: [ctx.cluster.managementUrls[0]!] }, username: 'tu-relay', password: RELAY_PASSWORD }).closeGateway('gw-r0', 'test');
  assert.ok(!dead.ok && dead.reason.includes('unreachable') && dead.reason.includes('rabbitmq_management'), JSON.stringify(dead));
  const closer = rabbitmqConnectionCloser({ settings: { ...settings, urls: [ctx.cluster.managementUrls[0]!, ctx.cluster.managementUrls[2]!] }, username: 'tu-relay', password: RELAY_PASSWORD });
  assert.equal(await closer.closeGateway('gw-unconnected', 'test'), { ok: true, closed: 0, url: ctx.cluster.managementUrls[2]! }, 'the next URL answers');
  // The ingress asks on every dead-lettered message; the broker is asked once per gateway per interval.
  const clock = new ManualClock();
  const throttled = throttledCloser(closer, { intervalMs: 1000, clock });
  const first = throttled.request('gw-unconnected', 'test');
  assert.ok(first !== undefined && throttled.request('gw-unconnected', 'test') === undefined, 'a second request within the interval is not sent');
  assert.ok(throttled.request('gw-other', 'test') !== undefined, 'another gateway is not held back');
  clock.advance(1000);
  const again = throttled.request('gw-unconnected', 'test');
  assert.ok(again !== undefined, 'after the interval it is sent again');
  assert.ok((await first!).ok && (await again!).ok);
});

test.run();
