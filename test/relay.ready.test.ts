import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import type { Storage } from '@tu/relay';
import { startMosquitto } from './support/mosquitto.js';
import { addGateway, analysisFlow, connectGateway, dropPgSchema, PG_BASE, pgSchemaName, publishEvent, startTestRelay } from './support/relay.js';
import { until } from './support/harness.js';
import { freePort } from './support/processes.js';

type Ready = { ready: boolean; reasons: string[] };
const ready = async (relay: Awaited<ReturnType<typeof startTestRelay>>) => {
  const r = await relay.app.inject({ url: '/api/v1/ready' });
  return { status: r.statusCode, body: r.json<Ready>() };
};

test('ready (200) with the database up, every migration applied and the embedded ingress listening; 503 once the database is gone', async () => {
  const relay = await startTestRelay();
  try {
    assert.equal(await ready(relay), { status: 200, body: { ready: true, reasons: [] } });
    await relay.storage.close();
    const r = await ready(relay);
    assert.is(r.status, 503);
    assert.equal(r.body.reasons, ['database (sqlite) does not answer']);
  } finally {
    await relay.stop();
  }
});

test('503 while a migration this build ships is not applied yet (another instance still migrating)', async () => {
  // The storage reports the migrations as they stood before the newest one.
  const relay = await startTestRelay({ wrapStorage: (s) => new Proxy(s, { get: (t, k) => (k === 'migrations' ? async () => (await t.migrations()).slice(0, -1) : Reflect.get(t, k, t)) }) as Storage });
  try {
    const r = await ready(relay);
    assert.is(r.status, 503);
    assert.is(r.body.reasons.length, 1);
    assert.match(r.body.reasons[0]!, /^migrations not applied: \d+$/);
  } finally {
    await relay.stop();
  }
});

test('external ingress: ready while connected to the broker, 503 while the broker is away', async () => {
  const mosq = await startMosquitto({ relay: 'relay-password-0123456789' }, 'relay');
  const relay = await startTestRelay({ overrides: { 'ingress.mode': 'external', 'ingress.url': mosq.url, 'ingress.username': 'relay', 'ingress.password': 'relay-password-0123456789', 'ingress.clientId': `relay-ready-${process.pid}` } });
  try {
    assert.is((await ready(relay)).status, 200);
    await mosq.stop();
    await until(() => relay.deps.ingress()?.connected === false, 10_000, 'the relay sees the broker gone');
    assert.equal(await ready(relay), { status: 503, body: { ready: false, reasons: ['not connected to the external broker'] } });
  } finally {
    await relay.stop();
    await mosq.stop();
  }
});

test('rabbitmq ingress with no node answering: the relay starts, 503 naming the last connect error, and stops cleanly', async () => {
  const closedPort = await freePort();
  const relay = await startTestRelay({
    overrides: {
      'ingress.mode': 'rabbitmq',
      'ingress.rabbitmq': { urls: [`amqp://127.0.0.1:${closedPort}`], password: 'relay-password-0123456789', authSecret: 'a'.repeat(32), reconnectInitialMs: 50, reconnectMaxMs: 200 },
    },
  });
  try {
    const r = await ready(relay);
    assert.is(r.status, 503);
    assert.equal(r.body.reasons.length, 1);
    assert.match(r.body.reasons[0]!, /^not connected to any rabbitmq node \(last attempt: .*ECONNREFUSED/);
    await until(() => (relay.deps.ingress()?.rabbitmq?.reconnects ?? 0) >= 2, 5000, 'it keeps trying');
  } finally {
    await relay.stop();
  }
});

type Health = { status: string; reasons: string[]; storage: { up: boolean; oldestWaitingMs: number; failingForMs: number; lastError?: string; presencePending: number; pushesWaiting: number } };
const health = async (relay: Awaited<ReturnType<typeof startTestRelay>>) => {
  const r = await relay.app.inject({ url: '/api/v1/health' });
  return { status: r.statusCode, body: r.json<Health>() };
};
async function eventually(pred: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A relay on a fresh PostgreSQL schema, one of its gateways connected, and a client of its own to the database. */
async function pgRelay(overrides: Record<string, unknown> = {}): Promise<{ relay: Awaited<ReturnType<typeof startTestRelay>>; schema: string; db: pg.Client; gw: Awaited<ReturnType<typeof connectGateway>>; stop: () => Promise<void> }> {
  const schema = pgSchemaName();
  const relay = await startTestRelay({ overrides: { 'storage.url': `${PG_BASE}?schema=${schema}`, 'storage.degradedAfterMs': 1000, ...overrides } });
  const db = new pg.Client({ connectionString: PG_BASE });
  await db.connect();
  const gw = await connectGateway(relay.mqttUrl, 'gw-w', await addGateway(relay, 'gw-w', 'acme'));
  return {
    relay,
    schema,
    db,
    gw,
    // The test's own client first: its lock or transaction ends with it, so the relay's writes can finish.
    stop: async () => {
      gw.end(true);
      await db.end();
      await relay.stop();
      await dropPgSchema(schema);
    },
  };
}

test('every write refused while the database answers its ping (disk full): health degraded naming the error after storage.degradedAfterMs, ready stays 200; writes back: acknowledged, ok', async () => {
  const t = await pgRelay();
  try {
    const { relay, schema, db, gw } = t;
    assert.is((await health(relay)).body.status, 'ok');
    // PostgreSQL itself refuses the inserts, as a full disk makes it do.
    await db.query(`CREATE FUNCTION ${schema}.disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$`);
    await db.query(`CREATE TRIGGER disk_full BEFORE INSERT ON ${schema}.events FOR EACH ROW EXECUTE FUNCTION ${schema}.disk_full()`);
    const flow = analysisFlow('gw-w');
    const acks = Promise.all(flow.map((e) => publishEvent(gw, 'gw-w', e)));
    await eventually(async () => (await health(relay)).body.status === 'degraded', 10_000, 'health to say degraded');
    const h = await health(relay);
    assert.is(h.status, 503);
    assert.is(h.body.storage.up, true);
    assert.match(h.body.reasons.join('\n'), /^storage writes have failed for \d+ s \(.*No space left on device\); \d+ jobs wait/m);
    assert.ok(h.body.storage.failingForMs > 0 && h.body.storage.oldestWaitingMs >= 1000, JSON.stringify(h.body.storage));
    assert.is(h.body.storage.lastError?.includes('No space left on device'), true);
    // A shared database failing would empty the load balancer of every instance (ready.ts says why).
    assert.is((await ready(relay)).status, 200);
    await db.query(`DROP TRIGGER disk_full ON ${schema}.events`);
    assert.equal(await acks, flow.map(() => 'ok'));
    assert.is(await relay.storage.countEvents({ gatewayId: 'gw-w' }), flow.length);
    const after = await health(relay);
    assert.equal({ status: after.status, reasons: after.body.reasons, failingForMs: after.body.storage.failingForMs, oldestWaitingMs: after.body.storage.oldestWaitingMs }, { status: 200, reasons: [], failingForMs: 0, oldestWaitingMs: 0 });
  } finally {
    await t.stop();
  }
});

test('a write that hangs (a lock held on the events table): health degraded once a job has waited storage.degradedAfterMs', async () => {
  const t = await pgRelay();
  try {
    const { relay, schema, db, gw } = t;
    await db.query('BEGIN');
    await db.query(`LOCK TABLE ${schema}.events IN ACCESS EXCLUSIVE MODE`);
    const flow = analysisFlow('gw-w');
    const acks = Promise.all(flow.map((e) => publishEvent(gw, 'gw-w', e)));
    await eventually(async () => (await health(relay)).body.status === 'degraded', 10_000, 'health to say degraded');
    const h = await health(relay);
    assert.match(h.body.reasons.join('\n'), /^a storage job has waited \d+ s to be written/m);
    assert.is(h.body.storage.failingForMs, 0);
    assert.is((await ready(relay)).status, 200);
    await db.query('COMMIT');
    assert.equal(await acks, flow.map(() => 'ok'));
    assert.is((await health(relay)).body.status, 'ok');
  } finally {
    await t.stop();
  }
});

test('database down while gateways flap: health and /metrics show the presence updates waiting (one per gateway) and the events waiting for room; all written once it is back', async () => {
  const t = await pgRelay({ 'storage.queueMax': 2 });
  try {
    const { relay, schema, db, gw } = t;
    const ids = Array.from({ length: 20 }, (_, i) => `gw-flap-${i}`);
    for (const id of ids) await relay.storage.addGateway({ id, tenantId: 'acme', secretHash: 'scrypt$x' });
    await relay.deps.queue.flush();
    // PostgreSQL refuses every write, as a database on its way down does.
    await db.query(`CREATE FUNCTION ${schema}.down() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the database system is shutting down'; END $$`);
    for (const table of ['events', 'gateways']) await db.query(`CREATE TRIGGER down BEFORE INSERT OR UPDATE ON ${schema}.${table} FOR EACH ROW EXECUTE FUNCTION ${schema}.down()`);
    // The ingress tells presence of each connection and disconnection (relay/src/ingress/embedded.ts).
    for (let round = 0; round < 100; round++)
      for (const id of ids) {
        relay.deps.presence.connected(id);
        relay.deps.presence.disconnected(id);
      }
    const flow = analysisFlow('gw-w');
    const acks = Promise.all(flow.map((e) => publishEvent(gw, 'gw-w', e)));
    await eventually(async () => (await health(relay)).body.storage.pushesWaiting === flow.length - 2, 10_000, 'the events beyond storage.queueMax to wait for room');
    const h = (await health(relay)).body.storage;
    assert.ok(h.presencePending >= ids.length && h.presencePending <= ids.length + 2, `one waiting per gateway, plus those being retried (${h.presencePending})`);
    const metrics = (await relay.app.inject({ url: '/metrics' })).body;
    assert.match(metrics, new RegExp(`^tu_relay_storage_presence_pending ${h.presencePending}$`, 'm'));
    assert.match(metrics, new RegExp(`^tu_relay_storage_pushes_waiting ${flow.length - 2}$`, 'm'));
    for (const table of ['events', 'gateways']) await db.query(`DROP TRIGGER down ON ${schema}.${table}`);
    assert.equal(await acks, flow.map(() => 'ok'));
    await relay.deps.queue.flush();
    const after = (await health(relay)).body.storage;
    assert.equal({ presencePending: after.presencePending, pushesWaiting: after.pushesWaiting }, { presencePending: 0, pushesWaiting: 0 });
    for (const id of ids) {
      const g = await relay.storage.getGateway(id);
      assert.equal({ online: g?.online, stored: g?.lastSeen != null }, { online: false, stored: true }, `${id}: its latest change, stored`);
    }
  } finally {
    await t.stop();
  }
});

test.run();
