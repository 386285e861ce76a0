import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import mqtt from 'mqtt';
import { STEPS, topics, type BusClient, type CommandType, type EventType, type ServiceName } from '@tu/shared';
import { derivePassword, type Agent } from '@tu/agent';
import { recognitionResult, uploaded } from './support/fixtures.js';
import { intake, observer, startAllHandlers, startTestAgent, until } from './support/harness.js';

/** Seeded PRNG (mulberry32) so a failing case can be replayed. */
function prng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GW = 'gw-test';

/** One invalid payload for a message of `type` produced by `producer`. */
function mutant(rand: () => number, type: string, producer: string, i: number): Buffer {
  const valid = {
    specversion: '1.0',
    id: `fuzz-${i}`,
    source: `/gateways/${GW}/${producer}`,
    type,
    time: new Date().toISOString(),
    subject: 'abcdefgh12',
    datacontenttype: 'application/json',
    data: { analysisId: 'abcdefgh12', attempt: 1, commandId: 'c', instance: 'i', durationMs: 1, result: recognitionResult() },
  };
  const pick = Math.floor(rand() * 14);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
  switch (pick) {
    case 0: return bytes(1 + Math.floor(rand() * 2000));
    case 1: return Buffer.from('{"specversion":"1.0",');
    case 2: return Buffer.from(JSON.stringify([1, 2, 3]));
    case 3: return Buffer.from(JSON.stringify({ ...valid, specversion: '0.3' }));
    case 4: return Buffer.from(JSON.stringify({ ...valid, type: 'analysis.completed' }));
    case 5: return Buffer.from(JSON.stringify({ ...valid, source: `/gateways/other-gw/${producer}` }));
    case 6: return Buffer.from(JSON.stringify({ ...valid, source: `/gateways/${GW}/intruder` }));
    case 7: return Buffer.from(JSON.stringify({ ...valid, data: { analysisId: 'x' } }));
    case 8: return Buffer.from(JSON.stringify({ ...valid, data: null }));
    case 9: return Buffer.from(JSON.stringify({ ...valid, time: 'yesterday' }));
    case 10: return Buffer.from(JSON.stringify({ ...valid, data: { ...valid.data, attempt: -1, durationMs: 'fast' } }));
    case 11: return Buffer.from('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}');
    case 12: return Buffer.from('['.repeat(5000) + ']'.repeat(5000));
    default: return Buffer.from(JSON.stringify({ ...valid, id: 'x'.repeat(100_000) }));
  }
}

type Ctx = { agent: Agent; clients: BusClient[]; raw: mqtt.MqttClient[] };
const test = suite<Ctx>('fuzz: invalid and oversized messages on every subscribed topic');
test.before(async (ctx) => {
  ctx.agent = await startTestAgent();
  ctx.clients = await startAllHandlers(ctx.agent);
  ctx.raw = [];
});
test.after(async (ctx) => {
  for (const c of ctx.raw) c.end(true);
  for (const c of ctx.clients) await c.close();
  await ctx.agent.stop();
});

/** A raw MQTT client logged in as `user`, with the client id `user:suffix` (ids it owns). */
async function rawClient(ctx: Ctx, user: string, suffix: string): Promise<mqtt.MqttClient> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${ctx.agent.broker.address!.port}`, {
    username: user,
    password: derivePassword(ctx.agent.busIdentity.secret, user),
    clientId: `${user}:${suffix}`,
    protocolVersion: 4,
    reconnectPeriod: 0,
  });
  ctx.raw.push(c);
  return c;
}

test('thousands of invalid messages are dead-lettered, counted, never acted on; the agent keeps serving', async (ctx) => {
  const rand = prng(20261129);
  const deadLetters: string[] = [];
  const watcher = await rawClient(ctx, 'svc-analysis-orchestrator', 'dl-watcher');
  await watcher.subscribeAsync(topics.allDeadLetters(GW), { qos: 0 });
  watcher.on('message', (_t, p) => deadLetters.push(JSON.parse(p.toString()).reason.code));

  // Events the orchestrator subscribes to, published by their legitimate producers.
  const eventTargets: { type: EventType; producer: ServiceName }[] = [
    { type: 'tu.image.uploaded', producer: 'intake' },
    ...Object.values(STEPS).flatMap((d) => [
      { type: d.completed, producer: d.service },
      { type: d.failed, producer: d.service },
    ]),
  ];
  // Commands the handlers subscribe to, sent with the orchestrator's credentials to their real instance ids.
  const handlerIds = ctx.clients.map((c) => c.instanceId);
  // (startAllHandlers serves the default plan's steps, in this order; a catalogue step outside the plan has no handler to fuzz.)
  const cmdTargets: { type: CommandType; instance: string }[] = (['recognition', 'comparison', 'metadata'] as const).map((step, i) => ({ type: STEPS[step].command, instance: handlerIds[i]! }));

  const producers = new Map<string, mqtt.MqttClient>();
  for (const t of eventTargets) if (!producers.has(t.producer)) producers.set(t.producer, await rawClient(ctx, t.producer, 'fuzz'));
  const orch = await rawClient(ctx, 'svc-analysis-orchestrator', 'orch-fuzz');

  const N = 3000;
  let sent = 0;
  const pubs: Promise<unknown>[] = [];
  for (let i = 0; i < N; i++) {
    if (i % 3 === 0) {
      const t = cmdTargets[i % cmdTargets.length]!;
      pubs.push(orch.publishAsync(topics.command(GW, t.type, t.instance), mutant(rand, t.type, 'svc-analysis-orchestrator', i), { qos: 1 }));
    } else {
      const t = eventTargets[i % eventTargets.length]!;
      pubs.push(producers.get(t.producer)!.publishAsync(topics.event(GW, t.type), mutant(rand, t.type, t.producer, i), { qos: 1 }));
    }
    sent++;
    if (pubs.length >= 200) await Promise.all(pubs.splice(0));
  }
  await Promise.all(pubs);

  const rejected = () => ctx.clients.reduce((n, c) => n + c.stats.rejected, 0) + orchRejected(ctx);
  // Every message reaches at least one validating subscriber (events also reach the handlers, which subscribe to none here).
  await until(() => rejected() >= sent, 20_000, `${sent} rejections (have ${rejected()})`);
  await until(() => deadLetters.length >= sent, 10_000, 'dead letters');
  assert.ok(({} as Record<string, unknown>).polluted === undefined, 'no prototype pollution');
  const codes = new Set(deadLetters);
  for (const c of ['INVALID_JSON', 'INVALID_ENVELOPE', 'TYPE_TOPIC_MISMATCH', 'WRONG_GATEWAY', 'WRONG_PRODUCER', 'INVALID_DATA']) assert.ok(codes.has(c), `dead letters include ${c}`);
  const o = ctx.agent.orchestrator.stats;
  assert.is(o.received, 0, 'no upload was acted on');
  assert.is(o.started, 0);

  // Oversized messages are refused by the broker itself.
  const before = ctx.agent.broker.stats.refusedPublishes;
  for (let i = 0; i < 5; i++) {
    const c = await rawClient(ctx, 'intake', `big${i}`);
    c.publish(topics.event(GW, 'tu.image.uploaded'), Buffer.alloc(ctx.agent.config.broker.maxPayloadBytes + 10, 0x7b), { qos: 1 });
  }
  await until(() => ctx.agent.broker.stats.refusedPublishes - before === 5, 5000, 'oversized refusals');

  // And the agent keeps serving.
  const up = await intake(ctx.agent);
  const obs = await observer(ctx.agent);
  ctx.clients.push(up, obs.bus);
  const d = uploaded(GW);
  await up.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
  await obs.waitFor((ev) => ev.some((e) => e.type === 'analysis.completed' && e.subject === d.analysisId));
});

const orchRejected = (ctx: Ctx): number => ctx.agent.orchestratorBus.stats.rejected;

test.run();
