import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { MqttClient } from 'mqtt';
import type { Relay } from '@tu/relay';
import { until } from './support/harness.js';
import { addGateway, analysisFlow, connectGateway, gql, publishEvent, startTestRelay, subscribeEvents, tokenFor } from './support/relay.js';

type Ctx = { relay: Relay; gw: Record<string, MqttClient>; tokens: Record<string, string> };
const test = suite<Ctx>('relay graph-gateway: GraphQL queries and graphql-ws subscriptions');

test.before(async (ctx) => {
  ctx.relay = await startTestRelay();
  ctx.gw = {};
  for (const [id, tenant] of [['acme-1', 'acme'], ['acme-2', 'acme'], ['globex-1', 'globex']] as const) {
    ctx.gw[id] = await connectGateway(ctx.relay.mqttUrl, id, await addGateway(ctx.relay, id, tenant));
  }
  ctx.tokens = { acme: await tokenFor('acme'), globex: await tokenFor('globex') };
});
test.after(async (ctx) => {
  for (const c of Object.values(ctx.gw)) c.end(true);
  await ctx.relay.stop();
});

const send = async (ctx: Ctx, gw: string, flow: ReturnType<typeof analysisFlow>) => {
  for (const e of flow) assert.is(await publishEvent(ctx.gw[gw]!, gw, e), 'ok');
};

test('no or invalid token: 401 on HTTP, connection refused on graphql-ws', async (ctx) => {
  const none = await gql(ctx.relay, undefined, '{ gateways { nodes { id } } }');
  assert.is(none.status, 401);
  assert.is(none.error?.code, 'UNAUTHENTICATED');
  const forged = await gql(ctx.relay, `${ctx.tokens.acme!.slice(0, -4)}AAAA`, '{ gateways { nodes { id } } }');
  assert.is(forged.status, 401);
  const client = createClient({ url: `${ctx.relay.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: 'Bearer nope.nope.nope' }, retryAttempts: 0 });
  const outcome = await new Promise<string>((resolve) => {
    client.subscribe({ query: 'subscription { analysisEvents { id } }' }, { next: () => resolve('data'), error: () => resolve('refused'), complete: () => resolve('complete') });
  });
  await client.dispose();
  assert.is(outcome, 'refused');
  assert.is(ctx.relay.deps.subscriptions.active, 0);
});

test('a subscribed client sees every event live and in order, *.failed included', async (ctx) => {
  const sub = await subscribeEvents(ctx.relay, ctx.tokens.acme!, 'acme-1');
  const ok = analysisFlow('acme-1');
  const failed = analysisFlow('acme-1', { outcome: 'failed' });
  await send(ctx, 'acme-1', ok);
  await send(ctx, 'acme-1', failed);
  await sub.waitFor(ok.length + failed.length);
  assert.equal(sub.events.map((e) => e.id), [...ok, ...failed].map((e) => e.id));
  assert.equal(sub.events.map((e) => e.type).slice(-3), ['analysis.started', 'recognition.failed', 'analysis.failed']);
  const last = sub.events.at(-1)!;
  assert.is(last.gatewayId, 'acme-1');
  assert.is(last.analysisId, failed[0]!.subject);
  assert.is((last.data as { reason: { code: string } }).reason.code, 'MODEL_NOT_LOADED');
  await sub.close();
});

test("a tenant's client never sees another tenant's gateways or events", async (ctx) => {
  const acmeAll = await subscribeEvents(ctx.relay, ctx.tokens.acme!);
  const globexAll = await subscribeEvents(ctx.relay, ctx.tokens.globex!);
  const g = analysisFlow('globex-1');
  const a = analysisFlow('acme-2');
  await send(ctx, 'globex-1', g);
  await send(ctx, 'acme-2', a);
  await acmeAll.waitFor(a.length);
  await globexAll.waitFor(g.length);
  assert.ok(acmeAll.events.every((e) => e.gatewayId.startsWith('acme-')));
  assert.equal(globexAll.events.map((e) => e.id), g.map((e) => e.id));
  // Subscribing to another tenant's gateway is refused.
  const spy = await subscribeEvents(ctx.relay, ctx.tokens.acme!, 'globex-1');
  assert.is(spy.events.length, 0);
  assert.ok(spy.errors.length > 0, 'subscription to another tenant gateway errors');
  // Queries are scoped too.
  const gws = await gql<{ gateways: { nodes: { id: string }[] } }>(ctx.relay, ctx.tokens.acme, '{ gateways { nodes { id } } }');
  assert.equal(gws.data?.gateways.nodes.map((n) => n.id), ['acme-1', 'acme-2']);
  const other = await gql<{ gateway: unknown; machine: unknown; analysis: unknown }>(ctx.relay, ctx.tokens.acme, 'query($m: ID!, $a: ID!) { gateway(id: "globex-1") { id } machine(id: $m) { id } analysis(id: $a) { id } }', { m: 'globex-1:default', a: g[0]!.subject });
  assert.equal(other.data, { gateway: null, machine: null, analysis: null });
  const globexMachines = await gql<{ machines: { nodes: { id: string }[] } }>(ctx.relay, ctx.tokens.globex, '{ machines { nodes { id } } }');
  assert.equal(globexMachines.data?.machines.nodes.map((m) => m.id), ['globex-1:default']);
  for (const s of [acmeAll, globexAll, spy]) await s.close();
});

test('queries: cursor pagination and filters (gateway, machine type, text)', async (ctx) => {
  for (let i = 0; i < 5; i++) await send(ctx, 'acme-2', analysisFlow('acme-2', { machineId: `loader-${i}`, brand: i % 2 ? 'Volvo' : 'Liebherr' }));
  const ids: string[] = [];
  let after: string | null = null;
  for (let n = 0; n < 10; n++) {
    const r: Awaited<ReturnType<typeof gql<{ machines: { nodes: { id: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }>>> = await gql(
      ctx.relay,
      ctx.tokens.acme,
      'query($after: String) { machines(first: 2, after: $after, gatewayId: "acme-2", search: "loader") { nodes { id } pageInfo { hasNextPage endCursor } } }',
      { after },
    );
    ids.push(...r.data!.machines.nodes.map((m) => m.id));
    if (!r.data!.machines.pageInfo.hasNextPage) break;
    after = r.data!.machines.pageInfo.endCursor;
  }
  assert.equal(ids, ['loader-0', 'loader-1', 'loader-2', 'loader-3', 'loader-4']);
  const volvo = await gql<{ machines: { nodes: { id: string; brand: string; type: string; analyses: { nodes: { status: string; results: { recognition: { machineType: string } } }[] } }[] } }>(
    ctx.relay,
    ctx.tokens.acme,
    '{ machines(search: "volvo", type: "excavator") { nodes { id brand type analyses { nodes { status results } } } } }',
  );
  assert.equal(volvo.data?.machines.nodes.map((m) => m.id), ['loader-1', 'loader-3']);
  assert.is(volvo.data?.machines.nodes[0]!.analyses.nodes[0]!.status, 'completed');
  assert.is(volvo.data?.machines.nodes[0]!.analyses.nodes[0]!.results.recognition.machineType, 'excavator');
  const failed = await gql<{ analyses: { nodes: { status: string; failure: { code: string } }[] } }>(ctx.relay, ctx.tokens.acme, '{ analyses(status: failed) { nodes { status failure } } }');
  assert.is(failed.data?.analyses.nodes.length, 1);
  assert.is(failed.data?.analyses.nodes[0]!.failure.code, 'MODEL_NOT_LOADED');
  const bad = await gql(ctx.relay, ctx.tokens.acme, '{ machines(after: "garbage") { nodes { id } } }');
  assert.ok(bad.errors?.[0]?.message.includes('invalid cursor'));
  // A forged cursor holding a NUL: the database could not compare it (it answered INTERNAL_ERROR).
  const nul = Buffer.from(JSON.stringify(['a\u0000', 'b'])).toString('base64url');
  const forged = await gql<unknown>(ctx.relay, ctx.tokens.acme, `{ machines(after: "${nul}") { nodes { id } } }`);
  assert.is((forged.errors?.[0] as { extensions?: { code?: string } } | undefined)?.extensions?.code, 'INVALID_REQUEST', JSON.stringify(forged));
});

test('the registered machine: name shown and searchable; the registered type stays, the photo recognition is evidence, a disagreement is flagged', async (ctx) => {
  const site4 = { id: 'EXC-4', name: 'Site 4 excavator', type: 'wheel_loader', brand: 'Volvo', model: 'L60H', serialNumber: 'VCE-4' };
  const flow = analysisFlow('acme-1', { registered: site4, recognised: { machineType: 'forklift', confidence: 0.71 } });
  await send(ctx, 'acme-1', flow);
  type M = { id: string; name: string; registeredId: string; type: string; lastRecognition: { machineType: string; confidence: number; analysisId: string }; typeMatch: boolean | null };
  const r = await gql<{ machines: { nodes: M[] } }>(ctx.relay, ctx.tokens.acme, '{ machines(search: "Site 4") { nodes { id name registeredId type lastRecognition { machineType confidence analysisId } typeMatch } } }');
  assert.equal(r.data?.machines.nodes, [
    { id: 'acme-1:default', name: 'Site 4 excavator', registeredId: 'EXC-4', type: 'wheel_loader', lastRecognition: { machineType: 'forklift', confidence: 0.71, analysisId: flow[0]!.subject }, typeMatch: false },
  ]);
  const none = await gql<{ machines: { nodes: M[] } }>(ctx.relay, ctx.tokens.globex, '{ machines(search: "Site 4") { nodes { id } } }');
  assert.equal(none.data?.machines.nodes, [], 'another tenant does not find it');
});

test('recentEvents: the tenant\'s newest events first, limited; another tenant\'s gateway and bad arguments are refused', async (ctx) => {
  const flow = analysisFlow('acme-2');
  await send(ctx, 'acme-2', flow);
  type E = { id: string; type: string; analysisId: string; gatewayId: string; data: unknown };
  const r = await gql<{ recentEvents: E[] }>(ctx.relay, ctx.tokens.acme, '{ recentEvents(first: 3) { id type analysisId gatewayId data } }');
  assert.equal(r.data?.recentEvents.map((e) => e.id), flow.slice(-3).reverse().map((e) => e.id));
  assert.is(r.data?.recentEvents[0]!.analysisId, flow[0]!.subject);
  const all = await gql<{ recentEvents: E[] }>(ctx.relay, ctx.tokens.acme, '{ recentEvents(first: 100) { gatewayId } }');
  assert.ok(all.data!.recentEvents.length > flow.length);
  assert.ok(all.data!.recentEvents.every((e) => e.gatewayId.startsWith('acme-')), 'tenant-scoped');
  const one = await gql<{ recentEvents: E[] }>(ctx.relay, ctx.tokens.acme, '{ recentEvents(gatewayId: "acme-1") { gatewayId } }');
  assert.ok(one.data!.recentEvents.length > 0 && one.data!.recentEvents.every((e) => e.gatewayId === 'acme-1'));
  const spy = await gql(ctx.relay, ctx.tokens.acme, '{ recentEvents(gatewayId: "globex-1") { id } }');
  assert.is(spy.errors?.[0]?.extensions?.code, 'FORBIDDEN', JSON.stringify(spy));
  for (const first of [0, 101, -5]) {
    const bad = await gql(ctx.relay, ctx.tokens.acme, 'query($f: Int) { recentEvents(first: $f) { id } }', { f: first });
    assert.is(bad.errors?.[0]?.extensions?.code, 'INVALID_REQUEST', `first: ${first}`);
    assert.match(bad.errors![0]!.message, /first/);
  }
});

test('every connection, nested ones included, takes `first` 1..100 and refuses anything else as recentEvents does, naming the argument and the range', async (ctx) => {
  // Before: a connection clamped `first` to 1..100, so `machines(first: 0)` answered one row with
  // hasNextPage true, while recentEvents(first: 0) was refused.
  const queries: Record<string, string> = {
    gateways: 'query($f: Int) { gateways(first: $f) { nodes { id } } }',
    machines: 'query($f: Int) { machines(first: $f) { nodes { id } } }',
    analyses: 'query($f: Int) { analyses(first: $f) { nodes { id } } }',
    labelledExamples: 'query($f: Int) { labelledExamples(first: $f) { nodes { id } } }',
    'Gateway.machines': 'query($f: Int) { gateways(first: 1) { nodes { machines(first: $f) { nodes { id } } } } }',
    'Machine.analyses': 'query($f: Int) { machines(first: 1) { nodes { analyses(first: $f) { nodes { id } } } } }',
    recentEvents: 'query($f: Int) { recentEvents(first: $f) { id } }',
  };
  for (const [field, query] of Object.entries(queries)) {
    for (const first of [0, -1, 101]) {
      const bad = await gql(ctx.relay, ctx.tokens.acme, query, { f: first });
      assert.is(bad.errors?.[0]?.extensions?.code, 'INVALID_REQUEST', `${field}(first: ${first}): ${JSON.stringify(bad)}`);
      assert.match(bad.errors![0]!.message, new RegExp(`^${field.replace('.', '\\.')}: first must be 1\\.\\.100.*\\(it is ${first}\\)`), `${field}(first: ${first})`);
    }
    for (const first of [1, 100, null]) {
      const ok = await gql(ctx.relay, ctx.tokens.acme, query, { f: first });
      assert.is(ok.errors, undefined, `${field}(first: ${first}): ${JSON.stringify(ok.errors)}`);
    }
  }
});

test('an empty gatewayId, machineId or type is refused on every field, the subscription included, naming the argument: never read as "no filter"', async (ctx) => {
  // Before: `machines(gatewayId: "")` (and analyses, typeAccuracy, labelledExamples, the
  // subscription) answered every gateway of the tenant, while recentEvents refused "".
  const cases: [field: string, arg: string, query: string][] = [
    ['machines', 'gatewayId', 'query($v: ID) { machines(gatewayId: $v) { nodes { id } } }'],
    ['machines', 'type', 'query($v: String) { machines(type: $v) { nodes { id } } }'],
    ['analyses', 'gatewayId', 'query($v: ID) { analyses(gatewayId: $v) { nodes { id } } }'],
    ['analyses', 'machineId', 'query($v: ID) { analyses(machineId: $v) { nodes { id } } }'],
    ['recentEvents', 'gatewayId', 'query($v: ID) { recentEvents(gatewayId: $v) { id } }'],
    ['typeAccuracy', 'gatewayId', 'query($v: ID) { typeAccuracy(gatewayId: $v) { machineType } }'],
    ['labelledExamples', 'gatewayId', 'query($v: ID) { labelledExamples(gatewayId: $v) { nodes { id } } }'],
  ];
  for (const [field, arg, query] of cases) {
    const bad = await gql(ctx.relay, ctx.tokens.acme, query, { v: '' });
    assert.is(bad.errors?.[0]?.extensions?.code, 'INVALID_REQUEST', `${field}(${arg}: ""): ${JSON.stringify(bad)}`);
    assert.match(bad.errors![0]!.message, new RegExp(`^${field}: ${arg} must not be empty: leave the argument out`), `${field}(${arg}: "")`);
    const all = await gql(ctx.relay, ctx.tokens.acme, query, { v: null });
    assert.is(all.errors, undefined, `${field}(${arg}: null) still means all: ${JSON.stringify(all.errors)}`);
  }
  const { active, connections } = ctx.relay.deps.subscriptions;
  const sub = await subscribeEvents(ctx.relay, ctx.tokens.acme!, '');
  await sub.close();
  await until(() => ctx.relay.deps.subscriptions.connections === connections, 5000, 'the refused client closed');
  const errs = sub.errors.flat() as { message?: string; extensions?: { code?: string } }[];
  assert.is(errs[0]?.extensions?.code, 'INVALID_REQUEST', JSON.stringify(sub.errors));
  assert.match(errs[0]!.message ?? '', /^analysisEvents: gatewayId must not be empty/);
  assert.is(ctx.relay.deps.subscriptions.active, active, 'no subscription was started');
});

test('subscription connections gauge: N clients open and close, the gauge returns to 0 and never goes below', async (ctx) => {
  const gauge = () => ctx.relay.deps.subscriptions.connections;
  assert.is(gauge(), 0, 'the earlier tests closed their clients');
  let min = 0;
  const sampler = setInterval(() => (min = Math.min(min, gauge())), 1);
  try {
    const subs = await Promise.all(Array.from({ length: 5 }, () => subscribeEvents(ctx.relay, ctx.tokens.acme!)));
    await until(() => gauge() === 5 && ctx.relay.deps.subscriptions.active === 5, 5000, '5 open connections');
    const health = (await ctx.relay.app.inject({ url: '/api/v1/health' })).json<{ subscriptions: { connections: number; active: number } }>();
    assert.equal(health.subscriptions, { active: 5, connections: 5 });
    for (const s of subs) await s.close();
    await until(() => gauge() === 0 && ctx.relay.deps.subscriptions.active === 0, 5000, 'all closed');
    // mercurius reports a close more than once (client message, then socket close): let those land.
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    clearInterval(sampler);
  }
  assert.is(min, 0, 'never below 0');
  assert.is(gauge(), 0);
  const metrics = (await ctx.relay.app.inject({ url: '/metrics' })).body;
  assert.match(metrics, /^tu_relay_subscription_connections 0$/m);
  const health = (await ctx.relay.app.inject({ url: '/api/v1/health' })).json<{ subscriptions: { connections: number } }>();
  assert.is(health.subscriptions.connections, 0);
});

test('gateway last seen moves with every accepted event (from memory), without a database write per event', async (ctx) => {
  const secret = await addGateway(ctx.relay, 'acme-3', 'acme');
  const c = await connectGateway(ctx.relay.mqttUrl, 'acme-3', secret);
  try {
    await until(() => ctx.relay.deps.presence.lastSeen('acme-3') !== undefined, 5000, 'connected');
    await ctx.relay.deps.queue.flush();
    const connectedAt = (await ctx.relay.storage.getGateway('acme-3'))!.lastSeen!;
    await new Promise((r) => setTimeout(r, 30));
    const before = new Date().toISOString();
    for (const e of analysisFlow('acme-3')) assert.is(await publishEvent(c, 'acme-3', e), 'ok');
    const r = await gql<{ gateway: { lastSeen: string; online: boolean } }>(ctx.relay, ctx.tokens.acme, '{ gateway(id: "acme-3") { lastSeen online } }');
    assert.ok(r.data!.gateway.lastSeen >= before, `last seen ${r.data!.gateway.lastSeen} moved past the connection time ${connectedAt}`);
    assert.is(r.data!.gateway.online, true);
    await ctx.relay.deps.queue.flush();
    assert.is((await ctx.relay.storage.getGateway('acme-3'))!.lastSeen, connectedAt, 'stored at most every 30 s per gateway, not per event');
  } finally {
    c.end(true);
  }
});

test('health and metrics', async (ctx) => {
  const h = await ctx.relay.app.inject({ url: '/api/v1/health' });
  assert.is(h.statusCode, 200);
  const body = h.json() as { status: string; ingress: { up: boolean; mode: string }; storage: { up: boolean; kind: string; queueDepth: number } };
  assert.is(body.status, 'ok');
  assert.is(body.storage.kind, 'sqlite');
  assert.is(body.ingress.mode, 'embedded');
  const m = (await ctx.relay.app.inject({ url: '/metrics' })).body;
  for (const name of ['tu_relay_events_ingested_total', 'tu_relay_storage_queue_depth', 'tu_relay_storage_batches_total', 'tu_relay_machine_upserts_total', 'tu_relay_subscribers']) assert.ok(m.includes(`# TYPE ${name}`), name);
  const root = await ctx.relay.app.inject({ url: '/' });
  assert.is(root.statusCode, 200, 'the dashboard is served at / (npm test builds it first)');
  assert.match(root.headers['content-type'] as string, /text\/html/);
  const traversal = await ctx.relay.app.inject({ url: '/..%2f..%2fpackage.json' });
  assert.is(traversal.statusCode, 404);
});

test('a failed analysis keeps what became of each step, stored and served: cancelled and skipped from a gateway of now, running and pending from an older one', async (ctx) => {
  const rejected = () => Object.values(ctx.relay.deps.ingest.stats.rejected).reduce((n, c) => n + (c ?? 0), 0);
  const before = rejected();
  const now = analysisFlow('globex-1', { outcome: 'failed' });
  const older = analysisFlow('globex-1', { outcome: 'failed', olderGateway: true });
  await send(ctx, 'globex-1', now);
  await send(ctx, 'globex-1', older);
  assert.is(rejected(), before, 'the relay refused none of them');
  type A = { analysis: { status: string; steps: { step: string; status: string }[] } };
  const stepsOf = async (flow: ReturnType<typeof analysisFlow>) => {
    const r = await gql<A>(ctx.relay, ctx.tokens.globex, 'query($id: ID!) { analysis(id: $id) { status steps } }', { id: flow[0]!.subject });
    assert.is(r.data?.analysis.status, 'failed', JSON.stringify(r));
    return r.data!.analysis.steps.map((s) => [s.step, s.status]);
  };
  assert.equal(await stepsOf(now), [['recognition', 'failed'], ['comparison', 'skipped'], ['metadata', 'cancelled']]);
  assert.equal(await stepsOf(older), [['recognition', 'failed'], ['comparison', 'pending'], ['metadata', 'running']]);
});

test.run();
