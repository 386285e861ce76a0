import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, type Client } from 'graphql-ws';
import { decodeJwt } from 'jose';
import WebSocket from 'ws';
import type { MqttClient } from 'mqtt';
import { issueToken, type Relay } from '@tu/relay';
import { addGateway, analysisFlow, connectGateway, gql, JWT_SECRET, publishEvent, startTestRelay, tokenFor } from './support/relay.js';

// Review of the relay's GraphQL surface: subscriptions outlived their token, sockets without
// connection_init stayed open for ever, errors leaked raw internal messages, GET bypassed the
// query size limit, and text PostgreSQL cannot hold reached the database.

const INIT_TIMEOUT_MS = 1000;
type Ctx = { relay: Relay; gw: MqttClient; token: string; failWith: Error | undefined };
const test = suite<Ctx>('relay GraphQL guard: token expiry, connection_init timeout and caps, catalogue errors, request checks');

test.before(async (ctx) => {
  ctx.failWith = undefined;
  ctx.relay = await startTestRelay({
    overrides: { 'graphql.websocket.initTimeoutMs': INIT_TIMEOUT_MS, 'graphql.websocket.maxPendingPerAddress': 3, 'graphql.websocket.maxPending': 5 },
    // listGateways fails with ctx.failWith when set: a database fault or an unreachable database.
    wrapStorage: (s) =>
      new Proxy(s, {
        get(t, p) {
          const v: unknown = Reflect.get(t, p, t);
          if (p === 'listGateways') return (...a: unknown[]) => (ctx.failWith ? Promise.reject(ctx.failWith) : (v as (...x: unknown[]) => unknown).apply(t, a));
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
        },
      }),
  });
  ctx.gw = await connectGateway(ctx.relay.mqttUrl, 'gw-g1', await addGateway(ctx.relay, 'gw-g1', 'acme'));
  await addGateway(ctx.relay, 'gw-other', 'globex');
  ctx.token = await tokenFor('acme');
});
test.after(async (ctx) => {
  ctx.gw.end(true);
  await ctx.relay.stop();
});

/** The promise's value, or a failure naming `what` after `ms` (a test fails rather than hangs). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const wsUrl = (relay: Relay) => `${relay.url.replace('http', 'ws')}/graphql`;

/** A bare WebSocket on /graphql (or `path`, the same route written otherwise) that says nothing (no connection_init). */
function silentSocket(relay: Relay, localAddress = '127.0.0.1', path = '/graphql') {
  const ws = new WebSocket(`${relay.url.replace('http', 'ws')}${path}`, 'graphql-transport-ws', { localAddress });
  const t0 = Date.now();
  const closed = new Promise<{ code: number; reason: string; afterMs: number }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), afterMs: Date.now() - t0 })));
  ws.on('error', () => undefined);
  const settled = new Promise<void>((resolve) => {
    ws.once('open', () => resolve());
    ws.once('close', () => resolve());
  });
  return { ws, closed, settled };
}

/** A graphql-ws client (the dashboard's library) subscribed to analysisEvents; resolves its close. */
function liveClient(relay: Relay, token: string, variables: Record<string, unknown> = {}, query = 'subscription ($gw: ID) { analysisEvents(gatewayId: $gw) { id } }') {
  const events: unknown[] = [];
  const errors: unknown[] = [];
  let client!: Client;
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) => {
    client = createClient({
      url: wsUrl(relay),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
      lazy: false,
      // The close is what the tests look at (on.closed); graphql-ws would print it to the console.
      onNonLazyError: () => undefined,
      on: { closed: (e) => resolve({ code: (e as { code: number }).code, reason: String((e as { reason?: unknown }).reason ?? ''), at: Date.now() }) },
    });
  });
  client.subscribe({ query, variables }, { next: (v) => (v.data ? events.push(v.data) : errors.push(v.errors)), error: (e) => errors.push(e), complete: () => undefined });
  // Waits for the socket to be closed, so none is left open when the relay stops.
  const dispose = async () => {
    await client.dispose();
    await within(closed, 5000, 'graphql-ws client closed');
  };
  return { dispose, events, errors, closed };
}

/** Until `n` more subscriptions than `since` were started (events published before would be missed). */
async function subscribed(relay: Relay, since: number, n = 1): Promise<void> {
  const t0 = Date.now();
  while (relay.deps.subscriptions.total < since + n) {
    if (Date.now() - t0 > 5000) throw new Error('subscription not started within 5 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const post = (relay: Relay, token: string, payload: string, contentType = 'application/json') =>
  relay.app.inject({ method: 'POST', url: '/graphql', headers: { authorization: `Bearer ${token}`, 'content-type': contentType }, payload });

test('graphql-ws: the connection is closed (4401) when its token expires; a longer-lived token stays connected', async (ctx) => {
  const short = await issueToken({ secret: JWT_SECRET }, { sub: 'short', tenant: 'acme' }, '2s');
  const exp = decodeJwt(short).exp!;
  const total = ctx.relay.deps.subscriptions.total;
  const expiring = liveClient(ctx.relay, short);
  const lasting = liveClient(ctx.relay, ctx.token);
  await subscribed(ctx.relay, total, 2);
  const active = ctx.relay.deps.subscriptions.active;
  // While the token is valid, events arrive.
  for (const e of analysisFlow('gw-g1')) assert.is(await publishEvent(ctx.gw, 'gw-g1', e), 'ok');
  const first = await Promise.race([expiring.closed.then(() => 'closed'), new Promise((r) => setTimeout(r, 5000, 'open'))]);
  assert.is(first, 'closed', 'the connection of the expired token is still open 5 s later');
  const c = await expiring.closed;
  assert.is(c.code, 4401);
  assert.match(c.reason, /expired/);
  assert.ok(c.at >= exp * 1000 - 50, `closed ${exp * 1000 - c.at} ms before the token expired`);
  assert.ok(expiring.events.length > 0, 'the subscription streamed while its token was valid');
  // The 30-day token's connection is untouched.
  const other = await Promise.race([lasting.closed.then(() => 'closed'), new Promise((r) => setTimeout(r, 200, 'open'))]);
  assert.is(other, 'open');
  await new Promise((r) => setTimeout(r, 50));
  assert.is(ctx.relay.deps.subscriptions.active, active - 1, 'the expired connection released its subscription');
  await expiring.dispose();
  await lasting.dispose();
});

test('graphql-ws: not-yet-initialised sockets are capped per address and in total (1013), closed after initTimeoutMs (4408), and the slots come back', async (ctx) => {
  // 4 from one address (at most 3 wait), then 3 from another (at most 5 wait in all).
  const a = [0, 1, 2, 3].map(() => silentSocket(ctx.relay, '127.0.0.1'));
  await Promise.all(a.map((s) => s.settled));
  await new Promise((r) => setTimeout(r, 100));
  const b = [0, 1, 2].map(() => silentSocket(ctx.relay, '127.0.0.2'));
  await Promise.all(b.map((s) => s.settled));
  const outcomes = await within(Promise.all([...a, ...b].map((s) => s.closed)), INIT_TIMEOUT_MS + 4000, 'every waiting socket closed').catch((err: Error) => {
    for (const s of [...a, ...b]) s.ws.terminate();
    throw err;
  });
  const busy = outcomes.filter((o) => o.code === 1013);
  const timedOut = outcomes.filter((o) => o.code === 4408);
  assert.is(busy.length, 2, JSON.stringify(outcomes));
  assert.is(timedOut.length, 5, JSON.stringify(outcomes));
  for (const o of busy) assert.ok(o.afterMs < INIT_TIMEOUT_MS / 2, `refused socket closed after ${o.afterMs} ms`);
  for (const o of timedOut) {
    assert.ok(o.afterMs >= INIT_TIMEOUT_MS - 100 && o.afterMs < INIT_TIMEOUT_MS + 3000, `timed-out socket closed after ${o.afterMs} ms`);
    assert.match(o.reason, /connection_init/);
  }
  // Nothing waits any more: a client that initialises in time is served.
  const total = ctx.relay.deps.subscriptions.total;
  const late = liveClient(ctx.relay, ctx.token);
  await subscribed(ctx.relay, total);
  for (const e of analysisFlow('gw-g1')) assert.is(await publishEvent(ctx.gw, 'gw-g1', e), 'ok');
  const t0 = Date.now();
  while (late.events.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
  assert.ok(late.events.length > 0, JSON.stringify(late.errors));
  // ... and stays open past the init timeout.
  const state = await Promise.race([late.closed.then(() => 'closed'), new Promise((r) => setTimeout(r, INIT_TIMEOUT_MS + 200, 'open'))]);
  assert.is(state, 'open');
  await late.dispose();
});

test('errors carry catalogue codes: a database fault is INTERNAL_ERROR, an unreachable database STORAGE_UNAVAILABLE, never the raw message', async (ctx) => {
  try {
    ctx.failWith = Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code: '22021' });
    const fault = await gql(ctx.relay, ctx.token, '{ gateways { nodes { id } } }');
    assert.is(fault.errors?.[0]?.extensions?.code, 'INTERNAL_ERROR');
    assert.not.match(JSON.stringify(fault), /UTF8|byte sequence/);
    ctx.failWith = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const down = await gql(ctx.relay, ctx.token, '{ gateways { nodes { id } } }');
    assert.is(down.errors?.[0]?.extensions?.code, 'STORAGE_UNAVAILABLE');
    assert.not.match(JSON.stringify(down), /ECONNREFUSED|5432/);
  } finally {
    ctx.failWith = undefined;
  }
  // A refusal of the resolvers keeps its own code and message.
  const refused = await gql(ctx.relay, ctx.token, '{ recentEvents(first: 0) { id } }');
  assert.is(refused.errors?.[0]?.extensions?.code, 'INVALID_REQUEST');
});

test('malformed requests: a query that is not GraphQL text is INVALID_REQUEST (400), a body over the limit PAYLOAD_TOO_LARGE (413)', async (ctx) => {
  for (const payload of ['{"query":5}', '{"query":true}', '{}', JSON.stringify({ query: JSON.stringify({ kind: 'Document', definitions: 5 }) }), '[{"query":"{ gateways { nodes { id } } }"}]']) {
    const r = await post(ctx.relay, ctx.token, payload);
    assert.is(r.statusCode, 400, `${payload}: ${r.body}`);
    assert.is((r.json() as { error?: { code: string } }).error?.code, 'INVALID_REQUEST', r.body);
    assert.not.match(r.body, /getDocument|not iterable/);
  }
  const badJson = await post(ctx.relay, ctx.token, '{"query":');
  assert.is(badJson.statusCode, 400);
  assert.is((badJson.json() as { errors: { extensions?: { code?: string } }[] }).errors[0]?.extensions?.code, 'INVALID_REQUEST', badJson.body);
  const big = await post(ctx.relay, ctx.token, JSON.stringify({ query: '{ gateways { nodes { id } } }', variables: { x: 'a'.repeat(300_000) } }));
  assert.is(big.statusCode, 413);
  assert.is((big.json() as { errors: { extensions?: { code?: string } }[] }).errors[0]?.extensions?.code, 'PAYLOAD_TOO_LARGE', big.body);
  // The dashboard's way still works, and so does an application/graphql body.
  assert.is((await post(ctx.relay, ctx.token, JSON.stringify({ query: '{ gateways { nodes { id } } }' }))).statusCode, 200);
  assert.is((await post(ctx.relay, ctx.token, '{ gateways { nodes { id } } }', 'application/graphql')).statusCode, 200);
});

test('a forbidden subscription is refused with FORBIDDEN in the error', async (ctx) => {
  const c = liveClient(ctx.relay, ctx.token, { gw: 'gw-other' });
  const t0 = Date.now();
  while (c.errors.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
  await c.dispose();
  const errs = c.errors.flat() as { message?: string; extensions?: { code?: string } }[];
  assert.is(errs[0]?.extensions?.code, 'FORBIDDEN', JSON.stringify(c.errors));
});

test('GET /graphql is refused, so graphql.maxQueryBytes cannot be bypassed through the URL', async (ctx) => {
  const long = `{ ${Array.from({ length: 350 }, (_, i) => `a${i}: gateways { nodes { id } }`).join(' ')} }`;
  for (const query of ['{ gateways { nodes { id } } }', long]) {
    const r = await ctx.relay.app.inject({ method: 'GET', url: `/graphql?query=${encodeURIComponent(query)}`, headers: { authorization: `Bearer ${ctx.token}` } });
    assert.is(r.statusCode, 400, r.body);
    assert.is((r.json() as { error?: { code: string } }).error?.code, 'INVALID_REQUEST');
    assert.match(r.body, /POST \/graphql/);
  }
  // Unauthenticated, GET is still a 401 first.
  assert.is((await ctx.relay.app.inject({ method: 'GET', url: '/graphql?query=%7B%7D' })).statusCode, 401);
});

test('a NUL character or an unpaired surrogate in the query or its variables is INVALID_REQUEST (400), over HTTP and in a subscription', async (ctx) => {
  const cases: [string, Record<string, unknown>][] = [
    ['query($s: String) { gateways(search: $s) { nodes { id } } }', { s: 'a\u0000b' }],
    ['query($s: String) { gateways(search: $s) { nodes { id } } }', { s: 'a\uD800b' }],
    ['query($s: String) { gateways(search: $s) { nodes { id } } }', { s: 'a\uDC00' }],
    ['{ gateways(search: "a\\u0000b") { nodes { id } } }', {}],
    ['{ gateways(search: "a\\u{0}b") { nodes { id } } }', {}],
    ['{ gateways(search: "a\u0000b") { nodes { id } } }', {}],
    ['query($s: ID!) { gateway(id: $s) { id } }', { s: 'gw\u0000' }],
  ];
  for (const [query, variables] of cases) {
    const r = await gql(ctx.relay, ctx.token, query, variables);
    assert.is(r.status, 400, `${JSON.stringify(query)} ${JSON.stringify(variables)}: ${JSON.stringify(r)}`);
    // Refused before parsing ({ error }), or, for an escape in a literal, by validation ({ errors }).
    assert.is(r.error?.code ?? r.errors?.[0]?.extensions?.code, 'INVALID_REQUEST', JSON.stringify(r));
    assert.match(JSON.stringify(r), /NUL character/);
  }
  // Proper surrogate pairs (an emoji) are ordinary text.
  const emoji = await gql(ctx.relay, ctx.token, 'query($s: String) { gateways(search: $s) { nodes { id } } }', { s: 'Site 😀' });
  assert.is(emoji.status, 200, JSON.stringify(emoji));
  const sub = liveClient(ctx.relay, ctx.token, { gw: 'gw\u0000' });
  const t0 = Date.now();
  while (sub.errors.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
  await sub.dispose();
  assert.is((sub.errors.flat() as { extensions?: { code?: string } }[])[0]?.extensions?.code, 'INVALID_REQUEST', JSON.stringify(sub.errors));
});

test('a subscription document gets the validation HTTP queries get: unknown fields, the alias limit', async (ctx) => {
  const cases: [string, string][] = [
    ['subscription { analysisEvents { id noSuchField } }', 'INVALID_REQUEST'],
    [`subscription { analysisEvents { ${Array.from({ length: 200 }, (_, i) => `a${i}: id`).join(' ')} } }`, 'QUERY_TOO_COMPLEX'],
  ];
  for (const [query, code] of cases) {
    const c = liveClient(ctx.relay, ctx.token, {}, query);
    const t0 = Date.now();
    while (c.errors.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    await c.dispose();
    assert.is((c.errors.flat() as { extensions?: { code?: string } }[])[0]?.extensions?.code, code, JSON.stringify(c.errors));
  }
});

test('one graphql-ws connection holds at most graphql.websocket.maxSubscriptionsPerConnection subscriptions', async (ctx) => {
  const max = ctx.relay.deps.graphql.websocket.maxSubscriptionsPerConnection;
  const errors: unknown[] = [];
  const client = createClient({ url: wsUrl(ctx.relay), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${ctx.token}` }, retryAttempts: 0, lazy: false, onNonLazyError: () => undefined });
  const since = ctx.relay.deps.subscriptions.total;
  const stops: (() => void)[] = [];
  for (let i = 0; i < max + 1; i++) {
    stops.push(client.subscribe({ query: 'subscription { analysisEvents { id } }' }, { next: (v) => v.errors && errors.push(v.errors), error: (e) => errors.push(e), complete: () => undefined }));
  }
  const t0 = Date.now();
  while (errors.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
  assert.is(ctx.relay.deps.subscriptions.total - since, max, 'the first max were started');
  assert.is((errors.flat() as { extensions?: { code?: string } }[])[0]?.extensions?.code, 'QUERY_TOO_COMPLEX', JSON.stringify(errors));
  // Ending one gives its place back.
  stops[0]!();
  await new Promise((r) => setTimeout(r, 200));
  const again: unknown[] = [];
  client.subscribe({ query: 'subscription { analysisEvents { id } }' }, { next: () => undefined, error: (e) => again.push(e), complete: () => undefined });
  await subscribed(ctx.relay, since + max, 1);
  assert.equal(again, []);
  await client.dispose();
});

test('/%67raphql (the router decodes it to /graphql) gets every check /graphql gets: bearer token, request guard, connection_init timeout', async (ctx) => {
  const encoded = '/%67raphql';
  const small = JSON.stringify({ query: '{ __typename }' });
  // No token: 401, not a 200 GraphQL answer from the executor.
  const anon = await ctx.relay.app.inject({ method: 'POST', url: encoded, headers: { 'content-type': 'application/json' }, payload: small });
  assert.is(anon.statusCode, 401, anon.body);
  assert.is(anon.json<{ error: { code: string } }>().error.code, 'UNAUTHENTICATED');
  // With a token: the request guard (GET refused, the query text within graphql.maxQueryBytes).
  const auth = { authorization: `Bearer ${ctx.token}` };
  const get = await ctx.relay.app.inject({ method: 'GET', url: `${encoded}?query=%7B__typename%7D`, headers: auth });
  assert.is(get.statusCode, 400, get.body);
  const big = JSON.stringify({ query: `{ ${Array.from({ length: 2000 }, (_, i) => `a${i}: __typename`).join(' ')} }` });
  const long = await ctx.relay.app.inject({ method: 'POST', url: encoded, headers: { ...auth, 'content-type': 'application/json' }, payload: big });
  assert.is(long.statusCode, 400, long.body.slice(0, 300));
  assert.is(long.json<{ error: { code: string } }>().error.code, 'QUERY_TOO_COMPLEX');
  // Served as /graphql is, with a token.
  const ok = await ctx.relay.app.inject({ method: 'POST', url: encoded, headers: { ...auth, 'content-type': 'application/json' }, payload: small });
  assert.equal(ok.json(), { data: { __typename: 'Query' } });
  // Its WebSocket is closed when it sends no connection_init in time, as one on /graphql.
  const silent = silentSocket(ctx.relay, '127.0.0.3', encoded);
  const end = await within(silent.closed, INIT_TIMEOUT_MS + 3000, 'the silent socket on /%67raphql closed').catch((err: Error) => {
    silent.ws.terminate();
    throw err;
  });
  assert.is(end.code, 4408, JSON.stringify(end));
});

test.run();
