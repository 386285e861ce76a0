import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectAsync } from 'mqtt';
import { gatewayTopics, ManualClock, packedEmbedding, silentLogger, topics, unpack, type AnyEvent, type EventType, type PackedEmbedding, type RecognitionResult } from '@tu/shared';
import { writeEmbedding } from '@tu/agent/internal/blobs/derived';
import type { Agent, UplinkHealth } from '@tu/agent';
import { recognitionResult, uploaded } from './support/fixtures.js';
import { inject, intake, observer, startAllHandlers, startHandler, startTestAgent, testConfig, until } from './support/harness.js';
import { photoBytes } from './support/real.js';
import { TestRelay } from './support/relay-ingress.js';
import { freePort } from './support/processes.js';

const GW = 'gw-test';
const SECRET = 'gateway-secret-gw-test';

const uplinkConfig = (url: string, over: Record<string, unknown> = {}) =>
  testConfig({
    'uplink.url': url,
    'uplink.password': SECRET,
    'uplink.reconnect.initialDelayMs': 20,
    'uplink.reconnect.maxDelayMs': 200,
    ...over,
  });

const health = async (agent: Agent): Promise<Extract<UplinkHealth, { queueDepth: number }>> => {
  const res = await inject(agent, { method: 'GET', url: '/api/v1/health' });
  assert.is(res.statusCode, 200);
  return (res.json() as { uplink: Extract<UplinkHealth, { queueDepth: number }> }).uplink;
};

/** Runs `n` analyses through the agent (real orchestrator + handlers); returns the local event log. */
async function analyses(agent: Agent, n: number, local: { events: AnyEvent[] }): Promise<void> {
  const bus = await intake(agent);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = uploaded(GW);
    ids.push(d.analysisId);
    await bus.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
  }
  await until(() => ids.every((id) => local.events.some((e) => e.subject === id && e.type === 'analysis.completed')), 10_000, 'analyses to complete');
  await bus.close();
}

const FORBIDDEN = /\/(cmd|sys\/presence|sys\/deadletter)\//;

test('references on the local bus are inlined for the relay: the thumbnail and the packed embedding (docs/messages.md)', async () => {
  const relay = new TestRelay({ [GW]: SECRET });
  await relay.start();
  const agent = await startTestAgent({ config: uplinkConfig(relay.url) });
  try {
    // A recognition handler that stores its vector beside the photo and answers with the reference, as the vision service does.
    const vector = Array.from({ length: 1280 }, (_, i) => Math.fround(Math.cos(i) / 7));
    const vision = await startHandler(agent, 'recognition', async (cmd): Promise<RecognitionResult> => ({
      ...recognitionResult(),
      embedding: await writeEmbedding(agent.blobs, cmd.data.image.sha256, 'mobilenet_v1_025_224', vector),
    }));
    const others = await Promise.all([startHandler(agent, 'comparison'), startHandler(agent, 'metadata')]);
    const local = await observer(agent, 'inline');
    const res = await inject(agent, { method: 'POST', url: '/api/v1/images', payload: photoBytes('forklift/imagenet_n03384352_forklift.jpg'), headers: { 'content-type': 'image/jpeg' } });
    assert.is(res.statusCode, 202, res.body);
    const id = res.json<{ analysisId: string }>().analysisId;
    await local.waitFor((es) => es.some((e) => e.subject === id && e.type === 'analysis.completed'), 10_000);
    const label = await inject(agent, { method: 'POST', url: `/api/v1/analyses/${id}/label`, payload: { label: 'forklift', by: 'Anna' } });
    assert.is(label.statusCode, 201, label.body);
    await until(() => relay.received.all.some((r) => r.subject === id && r.type === 'recognition.labelled'), 5000, 'the label at the relay');

    // On the local bus: references only.
    const localEnd = local.events.find((e) => e.subject === id && e.type === 'analysis.completed')!.data as { image: { thumbnail?: string }; results?: unknown };
    assert.is(localEnd.image.thumbnail, undefined);
    assert.is(localEnd.results, undefined, 'the results went in the step events; the uplink takes them from the orchestrator');
    const localRec = local.events.find((e) => e.subject === id && e.type === 'recognition.completed')!.data as { result: { embedding: object } };
    assert.ok('ref' in localRec.result.embedding);
    // At the relay: the thumbnail in every image ref, the vector packed wherever it was referenced.
    const at = (type: string) => relay.received.all.find((r) => r.subject === id && r.type === type)!.data as Record<string, unknown>;
    for (const type of ['tu.image.uploaded', 'analysis.started', 'analysis.completed']) {
      const thumb = (at(type)['image'] as { thumbnail?: string }).thumbnail;
      assert.ok(thumb && Buffer.from(thumb, 'base64').subarray(0, 2).equals(Buffer.from([0xff, 0xd8])), `${type}: a JPEG thumbnail`);
    }
    const packedAt = [
      (at('recognition.completed')['result'] as { embedding: PackedEmbedding }).embedding,
      (at('analysis.completed')['results'] as { recognition: { embedding: PackedEmbedding } }).recognition.embedding,
      at('recognition.labelled')['embedding'] as PackedEmbedding,
    ];
    for (const p of packedAt) {
      assert.ok(packedEmbedding.safeParse(p).success, JSON.stringify(p).slice(0, 120));
      assert.equal(unpack(p), vector);
    }
    for (const h of [vision, ...others]) await h.close();
    await local.bus.close();
  } finally {
    await agent.stop();
    await relay.stop();
  }
});

test('a labelled photo the storage quota removed: its relabel is taken, and reaches the relay with the numbers the label store kept', async () => {
  const relay = new TestRelay({ [GW]: SECRET });
  await relay.start();
  const agent = await startTestAgent({ config: uplinkConfig(relay.url) });
  try {
    const vector = Array.from({ length: 1280 }, (_, i) => Math.fround(Math.sin(i) / 5));
    const vision = await startHandler(agent, 'recognition', async (cmd): Promise<RecognitionResult> => ({
      ...recognitionResult(),
      embedding: await writeEmbedding(agent.blobs, cmd.data.image.sha256, 'mobilenet_v1_025_224', vector),
    }));
    const others = await Promise.all([startHandler(agent, 'comparison'), startHandler(agent, 'metadata')]);
    const res = await inject(agent, { method: 'POST', url: '/api/v1/images', payload: photoBytes('forklift/imagenet_n03384352_forklift.jpg'), headers: { 'content-type': 'image/jpeg' } });
    const id = res.json<{ analysisId: string }>().analysisId;
    await until(() => agent.orchestrator.status(id)?.status === 'completed', 10_000, 'analysis completed');
    const label = (l: string) => inject(agent, { method: 'POST', url: `/api/v1/analyses/${id}/label`, payload: { label: l, by: 'Anna' } });
    assert.is((await label('forklift')).statusCode, 201);
    const labelled = () => relay.received.all.filter((r) => r.subject === id && r.type === 'recognition.labelled');
    await until(() => labelled().length === 1, 5000, 'the label at the relay');
    // As the storage quota does once the analysis is delivered: the photo and its embedding file go.
    assert.ok((await agent.blobs.remove(agent.orchestrator.status(id)!.image.sha256)) > 0);
    const fix = await label('crane');
    assert.is(fix.statusCode, 201, fix.body);
    assert.is(fix.json<{ label: { embeddingLength: number } }>().label.embeddingLength, 1280);
    await until(() => labelled().length === 2, 5000, 'the relabel at the relay');
    const sent = labelled()[1]!.data as { label: string; embedding: PackedEmbedding };
    assert.is(sent.label, 'crane');
    assert.ok(packedEmbedding.safeParse(sent.embedding).success, `the relay gets the numbers, not a reference it refuses: ${JSON.stringify(sent.embedding).slice(0, 120)}`);
    assert.equal(unpack(sent.embedding), vector);
    for (const h of [vision, ...others]) await h.close();
  } finally {
    await agent.stop();
    await relay.stop();
  }
});

test('events flow to the relay in order; commands and sys messages never leave', async () => {
  const relay = new TestRelay({ [GW]: SECRET });
  await relay.start();
  const agent = await startTestAgent({ config: uplinkConfig(relay.url) });
  try {
    const handlers = await startAllHandlers(agent);
    const local = await observer(agent, 'flow');
    await analyses(agent, 10, local);
    const expected = local.events.map((e) => e.id);
    await until(() => relay.received.firstSeen.length >= expected.length, 5000, 'relay to receive every event');
    assert.equal(relay.received.firstSeen, expected, 'same events, same order as on the local bus');
    assert.is(relay.received.duplicates, 0);
    assert.ok(relay.received.all.every((r) => r.topic === topics.event(GW, r.type as EventType) && !FORBIDDEN.test(r.topic)));
    assert.ok(local.events.some((e) => e.type === 'analysis.completed'));
    assert.is(relay.received.refusedPublishes, 0, 'no publish outside the contract');
    assert.equal(relay.received.status, [JSON.stringify({ status: 'online' })]);
    await until(() => agent.uplink.outbox!.stats.depth === 0, 2000, 'outbox to drain');
    await agent.uplink.outbox!.flush(); // the counters shown are the committed ones
    const h = await health(agent);
    assert.is(h.state, 'online');
    assert.is(h.queueDepth, 0);
    assert.is(h.oldestUndeliveredAgeMs, null);
    assert.ok(h.lastDeliveryAt);
    assert.is(h.delivered, expected.length);
    const metrics = (await inject(agent, { method: 'GET', url: '/metrics' })).body;
    assert.match(metrics, `tu_uplink_delivered_total ${expected.length}`);
    assert.match(metrics, 'tu_uplink_queue_depth 0');
    assert.match(metrics, 'tu_uplink_state{state="online"} 1');
    for (const h2 of handlers) await h2.close();
    await local.bus.close();
  } finally {
    await agent.stop();
    await relay.stop();
  }
  assert.ok(relay.received.status.includes(JSON.stringify({ status: 'offline' })), 'offline status on a clean stop');
});

test('relay down, up, down again mid-stream, up: nothing lost, order kept, duplicates only re-sends', async () => {
  const relay = new TestRelay({ [GW]: SECRET });
  relay.port = await freePort();
  const agent = await startTestAgent({ config: uplinkConfig(`mqtt://127.0.0.1:${relay.port}`, { 'uplink.inflight': 8 }) });
  try {
    await startAllHandlers(agent);
    const local = await observer(agent, 'outage');
    await analyses(agent, 10, local);
    await agent.uplink.outbox!.flush();
    let h = await health(agent);
    assert.ok(h.state === 'offline' || h.state === 'connecting', h.state);
    assert.is(h.queueDepth, local.events.length, 'everything queued while the relay is down');
    assert.ok(h.oldestUndeliveredAgeMs !== null && h.lastDeliveryAt === null);
    assert.is(h.lastError?.code, 'UPLINK_CONNECT_FAILED');
    await relay.start();
    await until(() => relay.received.firstSeen.length > 5, 5000, 'delivery to start');
    await relay.stop(); // down again in the middle of the drain
    await analyses(agent, 5, local);
    await relay.start();
    const expected = local.events.map((e) => e.id);
    await until(() => relay.received.firstSeen.length >= expected.length, 10_000, 'every event at the relay');
    assert.equal(relay.received.firstSeen, expected, 'first arrivals in bus order');
    const resent = relay.received.all.length - relay.received.firstSeen.length;
    assert.is(relay.received.duplicates, resent, 'duplicates are re-sends of an id already delivered');
    await until(() => agent.uplink.outbox!.stats.depth === 0, 2000, 'outbox to drain');
    h = await health(agent);
    assert.is(h.state, 'online');
    assert.is(h.lastError, null);
    assert.is(h.dropped + h.refused + h.expired, 0);
    await local.bus.close();
  } finally {
    await agent.stop();
    await relay.stop();
  }
});

test('bad relay credentials: clear error in health and logs; the agent keeps working and queueing', async () => {
  const relay = new TestRelay({ [GW]: 'the-real-secret' });
  await relay.start();
  const lines: string[] = [];
  const { pino } = await import('pino');
  const logger = pino({ level: 'warn' }, { write: (s: string) => void lines.push(s) });
  const agent = await startTestAgent({ config: uplinkConfig(relay.url), logger });
  try {
    await startAllHandlers(agent);
    const local = await observer(agent, 'badcreds');
    await analyses(agent, 3, local);
    await until(() => relay.received.refusedConnects >= 2, 5000, 'refused connects');
    const h = await health(agent);
    assert.ok(h.state !== 'online');
    assert.is(h.lastError?.code, 'UPLINK_AUTH_REFUSED');
    assert.is(h.queueDepth, local.events.length, 'events wait in the outbox');
    assert.is(relay.received.all.length, 0);
    const errs = lines.filter((l) => l.includes('UPLINK_AUTH_REFUSED'));
    assert.is(errs.length, 1, 'logged once, not on every retry');
    assert.not.match(errs[0]!, SECRET, 'the secret is never logged');
    const api = await inject(agent, { method: 'GET', url: '/api/v1/health' });
    assert.is(api.statusCode, 200);
    await local.bus.close();
  } finally {
    await agent.stop();
    await relay.stop();
  }
});

test('reconnect waits for the backoff on the injected clock', async () => {
  const relay = new TestRelay({ [GW]: SECRET });
  relay.port = await freePort();
  const clock = new ManualClock(Date.now());
  const config = uplinkConfig(`mqtt://127.0.0.1:${relay.port}`, { 'uplink.reconnect.initialDelayMs': 1000, 'uplink.reconnect.maxDelayMs': 8000, 'uplink.reconnect.jitter': 0.5 });
  const agent = await startTestAgent({ config, clock, random: () => 0.5 });
  try {
    const fw = agent.uplink.forwarder!;
    await until(() => fw.stats.connectFailures === 1 && fw.state === 'offline', 3000, 'first attempt to fail');
    await relay.start();
    clock.advance(999);
    await new Promise((r) => setTimeout(r, 100));
    assert.is(fw.stats.connects, 0, 'no attempt before the delay');
    assert.is(fw.state, 'offline');
    clock.advance(2);
    await until(() => fw.state === 'online', 3000, 'connect after 1000 ms');
    await relay.stop();
    await until(() => fw.state === 'offline', 3000, 'offline after the relay goes');
    // attempt counter reset by the successful connect: 1000 ms again, then 2000 ms.
    await relay.start(relay.port);
    await relay.stop();
    clock.advance(1001);
    await until(() => fw.stats.connectFailures === 2, 3000, 'second failure');
    await relay.start(relay.port);
    clock.advance(1999);
    await new Promise((r) => setTimeout(r, 100));
    assert.is(fw.state, 'offline', 'second delay is 2000 ms');
    clock.advance(2);
    await until(() => fw.state === 'online', 3000, 'connected again');
  } finally {
    await agent.stop();
    await relay.stop();
  }
});

test('uplink disabled without a URL; health says so', async () => {
  const agent = await startTestAgent();
  try {
    const res = await inject(agent, { method: 'GET', url: '/api/v1/health' });
    assert.equal((res.json() as { uplink: unknown }).uplink, { state: 'disabled', reason: 'uplink.url is not configured' });
  } finally {
    await agent.stop();
  }
});

test('through the system Mosquitto (anonymous on 127.0.0.1:1883)', async () => {
  const gw = `gw-mosq-${process.pid}-${Date.now().toString(36)}`;
  let sub;
  try {
    sub = await connectAsync('mqtt://127.0.0.1:1883', { connectTimeout: 1000, reconnectPeriod: 0 });
  } catch {
    console.log('  (skipped: no Mosquitto on 127.0.0.1:1883)');
    return;
  }
  const got: { topic: string; id?: string; retain: boolean }[] = [];
  sub.on('message', (topic, payload, packet) => {
    if (payload.length === 0) return;
    const j = JSON.parse(payload.toString()) as { id?: string };
    got.push({ topic, retain: packet.retain, ...(j.id ? { id: j.id } : {}) });
  });
  await sub.subscribeAsync(`tu/${gw}/#`, { qos: 1 });
  const agent = await startTestAgent({ config: testConfig({ gatewayId: gw, 'uplink.url': 'mqtt://127.0.0.1:1883' }), logger: silentLogger() });
  try {
    await startAllHandlers(agent);
    const local = await observer(agent, 'mosq');
    const bus = await intake(agent);
    const d = uploaded(gw);
    await bus.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
    await until(() => local.events.some((e) => e.type === 'analysis.completed'), 5000, 'analysis to complete');
    const expected = local.events.map((e) => e.id);
    await until(() => got.filter((g) => g.id).length >= expected.length, 5000, 'events through Mosquitto');
    assert.equal(got.filter((g) => g.id).map((g) => g.id), expected);
    assert.ok(got.some((g) => g.topic === gatewayTopics.status(gw)), 'online status');
    await bus.close();
    await local.bus.close();
  } finally {
    await agent.stop();
    // Clear the retained status this test left on the shared broker.
    await sub.publishAsync(gatewayTopics.status(gw), '', { retain: true, qos: 1 });
    await sub.endAsync();
  }
});

test.run();
