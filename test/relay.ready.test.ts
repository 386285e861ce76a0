import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Storage } from '@tu/relay';
import { startMosquitto } from './support/mosquitto.js';
import { startTestRelay } from './support/relay.js';
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

test.run();
