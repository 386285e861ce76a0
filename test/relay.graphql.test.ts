import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { MqttClient } from 'mqtt';
import type { Relay } from '@tu/relay';
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
});

test('health and metrics', async (ctx) => {
  const h = await ctx.relay.app.inject({ url: '/api/v1/health' });
  assert.is(h.statusCode, 200);
  const body = h.json() as { status: string; ingress: { up: boolean; mode: string }; storage: { up: boolean; kind: string; queueDepth: number } };
  assert.is(body.status, 'ok');
  assert.is(body.storage.kind, 'sqlite');
  assert.is(body.ingress.mode, 'embedded');
  const m = (await ctx.relay.app.inject({ url: '/metrics' })).body;
  for (const name of ['tu_relay_events_ingested_total', 'tu_relay_storage_queue_depth', 'tu_relay_machine_upserts_total', 'tu_relay_subscribers']) assert.ok(m.includes(`# TYPE ${name}`), name);
  const root = await ctx.relay.app.inject({ url: '/' });
  assert.is(root.statusCode, 200, 'the dashboard is served at / (npm test builds it first)');
  assert.match(root.headers['content-type'] as string, /text\/html/);
  const traversal = await ctx.relay.app.inject({ url: '/..%2f..%2fpackage.json' });
  assert.is(traversal.statusCode, 404);
});

test.run();
