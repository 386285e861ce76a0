import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createSecretKey } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SignJWT } from 'jose';
import type { MqttClient } from 'mqtt';
import type { Relay } from '@tu/relay';
import { addGateway, analysisFlow, connectGateway, gql, JWT_SECRET, publishEvent, startTestRelay, tokenFor } from './support/relay.js';

// Issue 8 #4: the relay's GraphQL had no limits, and a header skipped authentication.

type Ctx = { relay: Relay; gw: MqttClient; token: string };
const test = suite<Ctx>('security: GraphQL authentication, introspection and cost limits');

test.before(async (ctx) => {
  ctx.relay = await startTestRelay({ overrides: { 'graphql.maxResponseBytes': 64 * 1024 } });
  ctx.gw = await connectGateway(ctx.relay.mqttUrl, 'gw-q', await addGateway(ctx.relay, 'gw-q', 'acme'));
  // Ten machines with a 20 KB thumbnail each: enough data for an unlimited query to hurt.
  const thumbnail = Buffer.alloc(15_000, 7).toString('base64');
  for (let i = 0; i < 10; i++) for (const e of analysisFlow('gw-q', { machineId: `m-${i}`, thumbnail })) await publishEvent(ctx.gw, 'gw-q', e);
  ctx.token = await tokenFor('acme');
});
test.after(async (ctx) => {
  ctx.gw.end(true);
  await ctx.relay.stop();
});

const INTROSPECTION = '{ __schema { types { name fields { name } } } }';

test('an `Upgrade: websocket` header on a plain POST no longer skips authentication', async (ctx) => {
  const res = await ctx.relay.app.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json', upgrade: 'websocket', connection: 'keep-alive' }, payload: JSON.stringify({ query: INTROSPECTION }) });
  assert.is(res.statusCode, 401);
  assert.is((res.json() as { error: { code: string } }).error.code, 'UNAUTHENTICATED');
  // Over a real socket too (inject does not go through the HTTP server's upgrade path).
  const real = await fetch(`${ctx.relay.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', upgrade: 'websocket' }, body: JSON.stringify({ query: INTROSPECTION }) }).catch((err: Error) => err);
  if (!(real instanceof Error)) assert.is(real.status, 401);
});

test('tokens without an expiry are refused', async (ctx) => {
  const forever = await new SignJWT({ tenant: 'acme' }).setProtectedHeader({ alg: 'HS256' }).setSubject('someone').setIssuedAt().sign(createSecretKey(Buffer.from(JWT_SECRET)));
  const r = await gql(ctx.relay, forever, '{ gateways { nodes { id } } }');
  assert.is(r.status, 401);
  assert.match(JSON.stringify(r), /exp/);
});

test('introspection is off by default; a developer can turn it on', async (ctx) => {
  const r = await gql(ctx.relay, ctx.token, INTROSPECTION);
  assert.ok(r.errors?.some((e) => /introspection/i.test(e.message)), JSON.stringify(r).slice(0, 300));
  assert.is(r.data ?? null, null);
  const dev = await startTestRelay({ overrides: { 'graphql.introspection': true } });
  try {
    const d = await gql<{ __schema: { types: unknown[] } }>(dev, await tokenFor('acme'), INTROSPECTION);
    assert.ok((d.data?.__schema.types.length ?? 0) > 10);
  } finally {
    await dev.stop();
  }
});

/** Runs a query while watching the event loop; returns the answer, its size and the worst stall. */
async function timed(ctx: Ctx, query: string) {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const t0 = performance.now();
  const res = await ctx.relay.app.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json', authorization: `Bearer ${ctx.token}` }, payload: JSON.stringify({ query }) });
  const ms = performance.now() - t0;
  h.disable();
  return { status: res.statusCode, body: res.body, bytes: res.body.length, ms, stallMs: h.max / 1e6 };
}

test('1,000 aliases are refused before running: small answer, no stall', async (ctx) => {
  const query = `{ ${Array.from({ length: 1000 }, (_, i) => `a${i}: machines(first: 100) { nodes { id latestThumbnail } }`).join(' ')} }`;
  const r = await timed(ctx, query);
  console.log(`  1,000 aliases: ${r.status}, ${r.bytes} bytes in ${r.ms.toFixed(0)} ms, worst event-loop stall ${r.stallMs.toFixed(0)} ms`);
  assert.match(r.body, /QUERY_TOO_COMPLEX/);
  assert.ok(r.bytes < 2000);
  assert.ok(r.stallMs < 100, `stalled ${r.stallMs.toFixed(0)} ms`);
});

test('a nested-fragment bomb is refused before running', async (ctx) => {
  // Each level doubles the one below: 2^12 copies of the machine list from a ~1 KB query.
  const levels = 12;
  const frags = [`fragment F0 on Query { machines(first: 100) { nodes { id latestThumbnail analyses(first: 100) { nodes { results } } } } }`];
  for (let i = 1; i <= levels; i++) frags.push(`fragment F${i} on Query { ...F${i - 1} x${i}: machines { nodes { id } } ...F${i - 1} }`);
  const query = `{ ...F${levels} } ${frags.join(' ')}`;
  const r = await timed(ctx, query);
  console.log(`  fragment bomb (${query.length} bytes): ${r.status}, ${r.bytes} bytes in ${r.ms.toFixed(0)} ms, worst stall ${r.stallMs.toFixed(0)} ms`);
  assert.match(r.body, /QUERY_TOO_COMPLEX|OverlappingFields|conflict/i);
  assert.ok(r.bytes < 20_000);
  assert.ok(r.stallMs < 100, `stalled ${r.stallMs.toFixed(0)} ms`);
});

test('a page queried without `first` costs its default size, as with `first` written out', async (ctx) => {
  // 20 machines × 20 analyses with their JSON: over the cost limit whether or not the default
  // page size is written out (it passed without it, counted as one machine and one analysis).
  const nested = (first: string) => `machines${first} { nodes { id analyses${first} { nodes { id results steps failure } } } }`;
  for (const first of ['(first: 20)', '']) {
    const r = await gql(ctx.relay, ctx.token, `{ ${nested(first)} }`);
    assert.ok(r.errors?.some((e) => e.extensions?.code === 'QUERY_TOO_COMPLEX'), `${first || 'no first'}: ${JSON.stringify(r).slice(0, 300)}`);
  }
  // recentEvents without `first` returns 50 events.
  const feeds = `{ ${Array.from({ length: 12 }, (_, i) => `f${i}: recentEvents { id data }`).join(' ')} }`;
  assert.ok((await gql(ctx.relay, ctx.token, feeds)).errors?.some((e) => e.extensions?.code === 'QUERY_TOO_COMPLEX'));
  // One page without `first` is still well within the limit.
  const one = await gql<{ machines: { nodes: unknown[] } }>(ctx.relay, ctx.token, '{ machines { nodes { id analyses { nodes { id status } } } } }');
  assert.is(one.errors, undefined);
  assert.is(one.data?.machines.nodes.length, 10);
});

test('a deep query is refused; the dashboard\'s own queries pass', async (ctx) => {
  const deep = '{ gateways { nodes { machines { nodes { analyses { nodes { id } } } } } } }';
  assert.ok((await gql(ctx.relay, ctx.token, deep)).errors?.some((e) => e.extensions?.code === 'QUERY_TOO_COMPLEX'));
  const ok = await gql<{ machines: { nodes: unknown[] } }>(ctx.relay, ctx.token, 'query($s: String) { machines(first: 100, search: $s) { nodes { id gatewayId type brand model serialNumber name lastSeen } } }', { s: null });
  assert.is(ok.errors, undefined);
  assert.is(ok.data?.machines.nodes.length, 10);
});

test('an answer over the response-size limit is replaced by an error', async (ctx) => {
  const r = await timed(ctx, '{ machines(first: 100) { nodes { id latestThumbnail } } }');
  assert.is(r.status, 413);
  assert.match(r.body, /RESPONSE_TOO_LARGE/);
});

test.run();
