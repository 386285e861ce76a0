/**
 * A gateway revoked or given a new secret while connected to the embedded broker, through
 * another process (as `npm run relay -- gateways revoke` is): its open connection is closed within
 * ingress.credentialCheckMs, and its next login is refused (relay/src/ingress/embedded.ts,
 * Registry.authenticate and refresh).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { MqttClient } from 'mqtt';
import { hashSecret, REVOKED_SECRET_HASH, generateSecret, type Relay } from '@tu/relay';
import { addGateway, connectGateway, startTestRelay } from './support/relay.js';

type Ctx = { relay: Relay };
const test = suite<Ctx>('relay ingress: revoked and rotated gateways are cut off');

test.before(async (ctx) => {
  ctx.relay = await startTestRelay({ overrides: { 'ingress.credentialCheckMs': 200 } });
});
test.after(async (ctx) => {
  await ctx.relay.stop();
});

const closed = (c: MqttClient, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    c.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });

const login = (ctx: Ctx, id: string, secret: string): Promise<string> =>
  connectGateway(ctx.relay.mqttUrl, id, secret).then(
    (c) => (c.end(true), 'connected'),
    (err: Error) => err.message,
  );

test('revoked in storage (not through this instance): the open connection is closed, the next login refused', async (ctx) => {
  const id = 'gw-rv-1';
  const secret = await addGateway(ctx.relay, id, 'rv');
  const other = await addGateway(ctx.relay, 'gw-rv-2', 'rv');
  const c = await connectGateway(ctx.relay.mqttUrl, id, secret);
  const bystander = await connectGateway(ctx.relay.mqttUrl, 'gw-rv-2', other);
  c.on('error', () => undefined);
  // As the CLI does from its own process: straight into storage; this instance's cache is not told.
  assert.ok(await ctx.relay.storage.setGatewaySecretHash(id, REVOKED_SECRET_HASH));
  assert.ok(await closed(c, 3000), 'closed within a few checks');
  c.end(true);
  assert.match(await login(ctx, id, secret), /Bad username or password|Not authorized/i);
  assert.is(ctx.relay.deps.ingress()?.closedRevoked, 1);
  assert.ok(bystander.connected, 'another gateway stays connected');
  bystander.end(true);
});

test('given a new secret: the connection made with the old one is closed; the new secret logs in', async (ctx) => {
  const id = 'gw-rv-3';
  const secret = await addGateway(ctx.relay, id, 'rv');
  const c = await connectGateway(ctx.relay.mqttUrl, id, secret);
  c.on('error', () => undefined);
  const next = generateSecret();
  assert.ok(await ctx.relay.storage.setGatewaySecretHash(id, await hashSecret(next)));
  assert.ok(await closed(c, 3000), 'closed');
  c.end(true);
  assert.match(await login(ctx, id, secret), /Bad username or password|Not authorized/i, 'the old secret');
  assert.is(await login(ctx, id, next), 'connected', 'the new secret');
  const metrics = await (await fetch(`${ctx.relay.url}/metrics`)).text();
  assert.match(metrics, /^tu_relay_ingress_refused_total\{kind="revoked_open"\} 2$/m);
});

test.run();
