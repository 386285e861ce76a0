import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry, type Relay } from '@tu/relay';
import { until } from './support/harness.js';
import { startMosquitto } from './support/mosquitto.js';
import { analysisFlow, connectGateway, publishEvent, startTestRelay } from './support/relay.js';

// An external broker holds a QoS 1 delivery in flight until the relay acknowledges it, which the
// relay does only once the event is stored (relay/src/ingress/external.ts). Events it could not
// store while the database was out (the lookup of a gateway it had not cached failed), more of
// them than Mosquitto keeps in flight (20), must all reach storage once the database is back.
test('events the relay could not store while the database was out reach storage once it is back, without a reconnect', async () => {
  const secret = 'gw-out1-secret-0123456789';
  const mosq = await startMosquitto({ 'gw-out1': secret, relay: 'relay-password-0123456789' }, 'relay');
  let failing = false;
  let refused = 0;
  const relay: Relay = await startTestRelay({
    overrides: { 'ingress.mode': 'external', 'ingress.url': mosq.url, 'ingress.username': 'relay', 'ingress.password': 'relay-password-0123456789', 'ingress.clientId': `relay-outage-${process.pid}`, 'ingress.credentialCheckMs': 3_600_000 },
    // The database, out for gateway lookups while `failing`.
    wrapStorage: (s) =>
      new Proxy(s, {
        get(target, key) {
          if (key === 'getGateway' && failing) {
            return () => {
              refused++;
              return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
            };
          }
          const v = Reflect.get(target, key, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      }),
  });
  const c = await connectGateway(mosq.url, 'gw-out1', secret);
  try {
    // Registered elsewhere (the CLI), so this instance has not cached it: its first event looks it up.
    await relay.registry.addTenant('acme');
    await new Registry(relay.storage).addGateway('gw-out1', 'acme', { secret });
    assert.not.ok(relay.registry.cached('gw-out1'));
    const events = Array.from({ length: 5 }, () => analysisFlow('gw-out1')).flat();
    assert.ok(events.length > 20, 'more than Mosquitto keeps in flight');
    failing = true;
    for (const e of events) assert.is(await publishEvent(c, 'gw-out1', e), 'ok');
    await until(() => refused > 0, 5000, 'the relay to meet the outage');
    await new Promise((r) => setTimeout(r, 500));
    failing = false;
    const stored = () => relay.storage.countEvents({ gatewayId: 'gw-out1' });
    for (const end = Date.now() + 20_000; (await stored()) < events.length && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
    assert.is(await stored(), events.length, `all ${events.length} events stored once the database is back`);
  } finally {
    c.end(true);
    await relay.stop();
    await mosq.stop();
  }
});

test.run();
