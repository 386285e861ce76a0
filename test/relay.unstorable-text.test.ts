import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { MqttClient } from 'mqtt';
import type { Relay } from '@tu/relay';
import { decodeInbound, topics, unstorableTextAt } from '@tu/shared';
import { addGateway, analysisFlow, connectGateway, dropPgSchema, PG_BASE, pgSchemaName, publishRaw, startTestRelay } from './support/relay.js';

type Ctx = { relay: Relay; schema: string; clients: MqttClient[] };
const test = suite<Ctx>('text that no store keeps (NUL, unpaired surrogates) is refused where messages enter');

test.before(async (ctx) => {
  ctx.schema = pgSchemaName();
  ctx.relay = await startTestRelay({ overrides: { 'storage.url': `${PG_BASE}?schema=${ctx.schema}` } });
  ctx.clients = [];
});
test.after(async (ctx) => {
  for (const c of ctx.clients) c.end(true);
  await ctx.relay.stop();
  await dropPgSchema(ctx.schema);
});

test('unstorableTextAt names the first string with a NUL or an unpaired surrogate, keys included', () => {
  assert.is(unstorableTextAt({ a: ['ok', 'x😀y', 'é'] }), undefined, 'a surrogate pair and other text are fine');
  assert.is(unstorableTextAt({ a: ['ok', 'a\u0000b'] }), '$.a[1]');
  assert.is(unstorableTextAt({ a: { b: 'x\ud800' } }), '$.a.b', 'a high surrogate alone');
  assert.is(unstorableTextAt({ b: '\ude00y' }), '$.b', 'a low surrogate alone');
  assert.is(unstorableTextAt({ b: '😀\ude00' }), '$.b', 'a pair followed by a lone low surrogate');
  assert.is(unstorableTextAt({ 'k\u0000': 1 }), '$ (a key)');
  // An escaped backslash before "u0000" is the six letters, not a NUL.
  const flow = analysisFlow('g1')[0]!;
  const literal = JSON.stringify({ ...flow, data: { ...(flow.data as object), machineId: 'back\\u0000slash' } });
  assert.ok(decodeInbound(topics.event('g1', flow.type), Buffer.from(literal), { gatewayId: 'g1', maxPayloadBytes: 65536 }).ok);
  // An escape (so the text is walked) beside arrays nested 200,000 deep: refused, not a stack overflow.
  const deep = `{"x":"\\u0041","y":${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
  const r = decodeInbound(topics.event('g1', flow.type), Buffer.from(deep), { gatewayId: 'g1', maxPayloadBytes: 1_000_000 });
  assert.not.ok(r.ok);
});

test('on PostgreSQL: events holding such text are acknowledged and refused with a reason, and the next gateway is stored', async (ctx) => {
  const bad = await connectGateway(ctx.relay.mqttUrl, 'gw-bad', await addGateway(ctx.relay, 'gw-bad', 'acme'));
  const good = await connectGateway(ctx.relay.mqttUrl, 'gw-good', await addGateway(ctx.relay, 'gw-good', 'other'));
  ctx.clients.push(bad, good);
  const started = analysisFlow('gw-bad')[0]!;
  // JSON.stringify writes both as \u escapes: what a gateway (or anyone with its secret) can send.
  const cases = [
    { ...started, id: 'id-with-\u0000-nul' },
    { ...started, data: { ...(started.data as object), machineId: 'EX\u0000-1' } },
    { ...started, data: { ...(started.data as object), machineId: 'EX-\ud800' } },
  ];
  const rejected = () => ctx.relay.deps.ingest.stats.rejected.INVALID_DATA ?? 0;
  for (const e of cases) {
    const before = rejected();
    assert.is(await publishRaw(bad, topics.event('gw-bad', e.type), JSON.stringify(e)), 'ok', 'acknowledged, not re-sent forever');
    assert.is(rejected() - before, 1);
  }
  // Before, each of these failed its storage batch again and again, and nothing behind it was
  // stored or acknowledged: this publish waited for ever.
  const next = analysisFlow('gw-good')[0]!;
  assert.is(await publishRaw(good, topics.event('gw-good', next.type), JSON.stringify(next)), 'ok');
  assert.is(await ctx.relay.storage.countEvents(), 1);
  assert.is(ctx.relay.deps.queue.stats.errors, 0, "no storage batch failed");
});

test.run();
