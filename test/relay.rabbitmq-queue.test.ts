import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import amqp from 'amqplib';
import type { MqttClient } from 'mqtt';
import { rabbitmqAuthBaseUrl, type Relay } from '@tu/relay';
import { freePort } from './support/processes.js';
import { startRabbitCluster, type RabbitCluster } from './support/rabbitmq.js';
import { analysisFlow, connectGateway, dropPgSchema, PG_BASE, pgSchemaName, publishEvent, startTestRelay, type Envelope } from './support/relay.js';

const AUTH_SECRET = 'broker-auth-secret-queue-0123456789';
const RELAY_PASSWORD = 'relay-amqp-password-0123456789';
const QUEUE = 'tu.relay.ingress';
/** Short: a refused login stays refused in the broker's auth cache this long. */
const CACHE_TTL_MS = 500;

type Ctx = { cluster: RabbitCluster; schema: string; port: number; relay: Relay | undefined; secret: string; gws: MqttClient[] };
const test = suite<Ctx>('relay ingress through RabbitMQ: no gateway publishes into amq.topic while the relay queue is missing');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const startRelay = (ctx: Ctx, urls: string[], more: Record<string, unknown> = {}): Promise<Relay> =>
  startTestRelay({
    overrides: {
      'http.port': ctx.port,
      'storage.url': `${PG_BASE}?schema=${ctx.schema}`,
      'ingress.mode': 'rabbitmq',
      'ingress.rabbitmq': { urls, password: RELAY_PASSWORD, authSecret: AUTH_SECRET, cacheTtlMs: CACHE_TTL_MS, retryDelayMs: 200, reconnectInitialMs: 200, reconnectMaxMs: 1000, ...more },
    },
  });
const askUser = async (ctx: Ctx): Promise<string> =>
  (
    await fetch(`${rabbitmqAuthBaseUrl(`http://127.0.0.1:${ctx.port}`, AUTH_SECRET)}/user`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'gw-q', password: ctx.secret, client_id: 'gw-q' }).toString(),
    })
  ).text();
/** Consumers of the relay queue as the broker counts them (0 when the queue is not there). */
async function consumers(ctx: Ctx): Promise<number> {
  const conn = await amqp.connect(ctx.cluster.amqpUrls[0]!.replace('//', `//tu-relay:${RELAY_PASSWORD}@`));
  conn.on('error', () => undefined);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    return (await ch.checkQueue(QUEUE)).consumerCount;
  } catch {
    return 0;
  } finally {
    await conn.close().catch(() => undefined);
  }
}
async function waitFor(what: string, ms: number, pred: () => Promise<boolean>): Promise<void> {
  for (const end = Date.now() + ms; !(await pred()); await sleep(100)) if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}
async function publishAll(c: MqttClient, events: Envelope[]): Promise<void> {
  for (const e of events) assert.is(await publishEvent(c, 'gw-q', e), 'ok', `PUBACK for ${e.type}`);
}
async function assertStored(relay: Relay, events: Envelope[], what: string): Promise<void> {
  const ids = async () => new Set((await relay.storage.recentEventIds(1000)).map((k) => k.id));
  await waitFor(`${what}: every acknowledged event stored`, 10_000, async () => {
    const stored = await ids();
    return events.every((e) => stored.has(e.id));
  }).catch(async (err: Error) => {
    const stored = await ids();
    assert.unreachable(`${err.message}: ${events.filter((e) => !stored.has(e.id)).length} of ${events.length} acknowledged to the gateway and never stored`);
  });
}

test.before(async (ctx) => {
  ctx.schema = pgSchemaName();
  ctx.port = await freePort();
  ctx.gws = [];
  ctx.cluster = await startRabbitCluster({ nodes: 1, authBaseUrl: rabbitmqAuthBaseUrl(`http://127.0.0.1:${ctx.port}`, AUTH_SECRET), cacheTtlMs: CACHE_TTL_MS });
  ctx.relay = await startRelay(ctx, ctx.cluster.amqpUrls);
  await ctx.relay.registry.addTenant('acme');
  ctx.secret = await ctx.relay.registry.addGateway('gw-q', 'acme');
});

test.after(async (ctx) => {
  for (const c of ctx.gws) c.end(true);
  await ctx.relay?.stop();
  await ctx.cluster?.stop();
  if (ctx.schema) await dropPgSchema(ctx.schema);
});

test('the queue deleted under a consuming relay: it declares it again, and what gateways publish after is stored', async (ctx) => {
  const relay = ctx.relay!;
  const c = await connectGateway(ctx.cluster.mqttUrls[0]!, 'gw-q', ctx.secret);
  ctx.gws.push(c);
  const before = analysisFlow('gw-q');
  await publishAll(c, before);
  await assertStored(relay, before, 'before the queue was deleted');
  await ctx.cluster.ctl(0, ['delete_queue', QUEUE]);
  // The broker cancels the consumer and leaves the channel open: the relay must notice by itself.
  await waitFor('the relay consuming its queue again', 15_000, async () => (await consumers(ctx)) >= 1);
  const st = relay.deps.ingress()!.rabbitmq!;
  assert.ok(st.queueDeclared && st.consumerCancels === 1, JSON.stringify(st));
  const events = analysisFlow('gw-q');
  await publishAll(c, events);
  await assertStored(relay, events, 'after the queue was deleted and declared again');
  c.end(true);
});

test('a relay that has not declared its queue (cannot reach the cluster) refuses gateway logins; once it has, they get in and what they publish is stored', async (ctx) => {
  // The same instance with a wrong AMQP URL (a deployment typo; or the first start of a cluster
  // it cannot reach yet): it answers the broker's auth questions, but nothing is bound to amq.topic.
  await ctx.relay!.stop();
  ctx.relay = undefined;
  // A first deployment: no queue yet (gone already when the first test failed).
  await ctx.cluster.ctl(0, ['delete_queue', QUEUE]).catch(() => '');
  ctx.relay = await startRelay(ctx, [`amqp://127.0.0.1:${await freePort()}`]);
  await sleep(CACHE_TTL_MS + 100); // the broker's cached answers from the first test expire
  const refused = await askUser(ctx);
  const got = await connectGateway(ctx.cluster.mqttUrls[0]!, 'gw-q', ctx.secret).then(
    async (c) => {
      // Let in: what it publishes now is acknowledged and routed nowhere.
      const lost = analysisFlow('gw-q');
      for (const e of lost) await publishEvent(c, 'gw-q', e);
      c.end(true);
      return lost;
    },
    () => undefined,
  );
  await ctx.relay.stop();
  // Right URL: it declares the queue, and the gateway gets in (once the broker's cached refusal expires).
  ctx.relay = await startRelay(ctx, ctx.cluster.amqpUrls);
  if (got) await assertStored(ctx.relay, got, 'a gateway let in before the relay declared its queue');
  assert.is(refused, 'deny', 'no gateway login while nothing would take its events');
  assert.ok(ctx.relay.deps.ingress()!.rabbitmq!.queueDeclared, 'declared at start');
  assert.is(await askUser(ctx), 'allow');
  let c: MqttClient | undefined;
  await waitFor('the gateway let in', 10_000, async () => (c = await connectGateway(ctx.cluster.mqttUrls[0]!, 'gw-q', ctx.secret).catch(() => undefined)) !== undefined);
  ctx.gws.push(c!);
  const events = analysisFlow('gw-q');
  await publishAll(c!, events);
  await assertStored(ctx.relay, events, 'after the relay declared its queue');
});

test('deliveryLimit changed after the queue was declared: the relay consumes the queue as it is and says so, gateways keep getting in', async (ctx) => {
  // The queue was declared with the default limit (20); RabbitMQ cannot change a queue's arguments.
  await ctx.relay!.stop();
  ctx.relay = undefined;
  ctx.relay = await startRelay(ctx, ctx.cluster.amqpUrls, { deliveryLimit: 30 });
  const ready = await fetch(`${ctx.relay.url}/api/v1/ready`);
  assert.is(ready.status, 200, `consuming: ${await ready.text()}`);
  const st = ctx.relay.deps.ingress()!.rabbitmq!;
  assert.ok(st.queueDeclared);
  assert.match(st.queueSettingsIgnored ?? '', /x-delivery-limit.*deliveryLimit 30 does not apply/, 'health says which setting does not apply and what to do');
  await sleep(CACHE_TTL_MS + 100);
  const c = await connectGateway(ctx.cluster.mqttUrls[0]!, 'gw-q', ctx.secret);
  ctx.gws.push(c);
  const events = analysisFlow('gw-q');
  await publishAll(c, events);
  await assertStored(ctx.relay, events, 'with the queue as it was declared');
});

test.run();
