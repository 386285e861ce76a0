import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  embeddingValue,
  pack,
  packedEmbedding,
  unpack,
  catalog,
  COMMAND_TYPES,
  commandsHandledBy,
  decodeInbound,
  EVENT_TYPES,
  eventsProducedBy,
  filterCovers,
  MESSAGE_TYPES,
  parseTopic,
  recognitionLabelled,
  STEPS,
  TEACH_LABELS,
  topicMatches,
  topics,
} from '@tu/shared';
import { aclFor, mayPublish, maySubscribe } from '@tu/agent';
import { generatedDocs, ROOT } from '../scripts/docs.js';
import { labelled, uploaded } from './support/fixtures.js';

test('every message type has a producer; every command a handler; every step its three messages', () => {
  for (const t of MESSAGE_TYPES) assert.ok(catalog[t].producer, t);
  for (const c of COMMAND_TYPES) assert.ok(commandsHandledBy(catalog[c].handler).includes(c), c);
  for (const d of Object.values(STEPS)) {
    assert.is(catalog[d.command].kind, 'command');
    assert.is(catalog[d.completed].producer, d.service);
    assert.is(catalog[d.failed].producer, d.service);
  }
  assert.equal(EVENT_TYPES.length + COMMAND_TYPES.length, MESSAGE_TYPES.length);
});

test('topics are built and parsed in one place', () => {
  assert.is(topics.event('gw1', 'analysis.completed'), 'tu/gw1/evt/analysis.completed');
  assert.equal(parseTopic('tu/gw1/evt/analysis.completed'), { kind: 'event', gatewayId: 'gw1', type: 'analysis.completed' });
  assert.equal(parseTopic('tu/gw1/cmd/analysis.metadata.request/i-1'), { kind: 'command', gatewayId: 'gw1', type: 'analysis.metadata.request', instanceId: 'i-1' });
  assert.is(parseTopic('tu/gw1/evt/not.a.type').kind, 'unknown');
  assert.is(parseTopic('tu/gw1/cmd/analysis.completed/i').kind, 'unknown', 'an event type is not a command');
  assert.ok(topicMatches('tu/+/evt/#', 'tu/g/evt/a.b'));
  assert.not.ok(topicMatches('tu/g/evt/+', 'tu/g/evt/a/b'));
  // The level walk (shared/src/topics.ts) against the cases MQTT 3.1.1 §4.7 names.
  const cases: [string, string, boolean][] = [
    ['a/b', 'a/b', true], ['a/b', 'a/bc', false], ['a/bc', 'a/b', false], ['a/b', 'a/b/c', false], ['a/b/c', 'a/b', false],
    ['a/#', 'a', true], ['a/#', 'a/b/c', true], ['#', 'a/b', true], ['#', '', true], ['a/+', 'a/', true], ['a/+', 'a', false],
    ['+', '', true], ['+/+', '/', true], ['+', '/', false], ['a//b', 'a//b', true], ['a/+/b', 'a//b', true], ['a/+/b', 'a/x/y/b', false],
    ['tu/+/cmd/x/+', 'tu/g/cmd/x/i1', true], ['tu/+/cmd/x/+', 'tu/g/cmd/x', false], ['', '', true], ['', 'a', false], ['a', '', false],
  ];
  for (const [filter, topic, expected] of cases) assert.is(topicMatches(filter, topic), expected, `${filter} vs ${topic}`);
  assert.ok(filterCovers('tu/g/evt/#', 'tu/g/evt/+'));
  assert.not.ok(filterCovers('tu/g/evt/+', 'tu/g/evt/#'));
  assert.not.ok(filterCovers('tu/g/cmd/x/i1', 'tu/g/cmd/x/+'));
});

test('ACLs follow the catalogue: each producer may publish exactly its events', () => {
  const svc = aclFor({ role: 'service', service: 'svc-ai-vision-adapter' }, 'g', 'v1');
  for (const t of EVENT_TYPES) assert.is(mayPublish(svc, topics.event('g', t)), eventsProducedBy('svc-ai-vision-adapter').includes(t), t);
  assert.ok(maySubscribe(svc, topics.command('g', 'analysis.recognition.request', 'v1')));
  assert.not.ok(maySubscribe(svc, topics.command('g', 'analysis.recognition.request', 'v2')));
  const orch = aclFor({ role: 'orchestrator', service: 'svc-analysis-orchestrator' }, 'g', 'o');
  for (const c of COMMAND_TYPES) assert.ok(mayPublish(orch, topics.command('g', c, 'anyone')));
  assert.not.ok(mayPublish(orch, 'tu/g/cmd/analysis.metadata.request/+'), 'no wildcard publish');
  const ui = aclFor({ role: 'observer', name: 'ui' }, 'g', 'u');
  assert.equal(ui.publish, []);
});

test('decodeInbound accepts a valid event and names the reason for each rejection', () => {
  const data = uploaded('g1');
  const env = { specversion: '1.0', id: 'e1', source: '/gateways/g1/intake', type: 'tu.image.uploaded', time: new Date().toISOString(), subject: data.analysisId, datacontenttype: 'application/json', data };
  const topic = topics.event('g1', 'tu.image.uploaded');
  const ok = decodeInbound(topic, Buffer.from(JSON.stringify(env)), { gatewayId: 'g1', maxPayloadBytes: 65536 });
  assert.ok(ok.ok);
  const code = (payload: unknown, t = topic, max = 65536) => {
    const r = decodeInbound(t, Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)), { gatewayId: 'g1', maxPayloadBytes: max });
    return r.ok ? 'ok' : r.rejection.code;
  };
  assert.is(code(env, topic, 100), 'PAYLOAD_TOO_LARGE');
  assert.is(code('{'), 'INVALID_JSON');
  assert.is(code({ ...env, specversion: '0.3' }), 'INVALID_ENVELOPE');
  // Valid ISO, but its instant is in year 10000 ("+010000-…" in UTC sorts before every other time as text).
  assert.is(code({ ...env, time: '9999-12-31T23:59:59-23:59' }), 'INVALID_ENVELOPE');
  assert.is(code({ ...env, data: { ...data, uploadedAt: '1969-12-31T23:59:59Z' } }), 'INVALID_DATA');
  assert.is(code(env, topics.event('g1', 'analysis.started')), 'TYPE_TOPIC_MISMATCH');
  assert.is(code({ ...env, source: '/gateways/g2/intake' }), 'WRONG_GATEWAY');
  assert.is(code({ ...env, source: '/gateways/g1/metadata-service' }), 'WRONG_PRODUCER');
  assert.is(code({ ...env, data: { ...data, image: { ...data.image, sha256: 'nope' } } }), 'INVALID_DATA');
  assert.is(code({ ...env, subject: 'someotherid' }), 'INVALID_DATA');
  assert.is(code(env, 'tu/g1/evt/unknown.type'), 'UNKNOWN_TOPIC');
});

test('recognition.labelled: the intake produces it, the uplink may forward it, labels are the machine types plus negative', () => {
  assert.is(catalog['recognition.labelled'].kind, 'event');
  assert.ok(eventsProducedBy('intake').includes('recognition.labelled'));
  const intake = aclFor({ role: 'service', service: 'intake' }, 'g', 'intake');
  assert.ok(mayPublish(intake, topics.event('g', 'recognition.labelled')));
  assert.not.ok(mayPublish(aclFor({ role: 'service', service: 'svc-ai-vision-adapter' }, 'g', 'v'), topics.event('g', 'recognition.labelled')));
  // The uplink is an observer of all events: it receives (and forwards) this one too.
  assert.ok(maySubscribe(aclFor({ role: 'observer', name: 'uplink' }, 'g', 'up'), topics.event('g', 'recognition.labelled')));
  assert.equal([...TEACH_LABELS].sort(), ['aerial_lift', 'backhoe_loader', 'bulldozer', 'crane', 'dump_truck', 'excavator', 'forklift', 'grader', 'negative', 'roller', 'skid_steer', 'telehandler', 'tractor', 'wheel_loader']);

  const ok = labelled({ label: 'negative', kind: 'correction' });
  assert.ok(recognitionLabelled.safeParse(ok).success);
  const bad = recognitionLabelled.safeParse({ ...ok, label: 'spaceship' });
  assert.not.ok(bad.success);
  assert.match(bad.error!.issues[0]!.message, /label must be one of excavator, .*negative \(got 'spaceship'\)/);
  assert.not.ok(recognitionLabelled.safeParse({ ...ok, by: '   ' }).success, 'a blank technician name');
  assert.not.ok(recognitionLabelled.safeParse({ ...ok, embedding: [] }).success);
  assert.not.ok(recognitionLabelled.safeParse({ ...ok, kind: 'maybe' }).success);

  const env = { specversion: '1.0', id: ok.correctionId, source: '/gateways/g1/intake', type: 'recognition.labelled', time: ok.at, subject: ok.analysisId, datacontenttype: 'application/json', data: ok };
  const topic = topics.event('g1', 'recognition.labelled');
  assert.ok(decodeInbound(topic, Buffer.from(JSON.stringify(env)), { gatewayId: 'g1', maxPayloadBytes: 65536 }).ok);
  const fromVision = decodeInbound(topic, Buffer.from(JSON.stringify({ ...env, source: '/gateways/g1/svc-ai-vision-adapter' })), { gatewayId: 'g1', maxPayloadBytes: 65536 });
  assert.is(fromVision.ok ? 'ok' : fromVision.rejection.code, 'WRONG_PRODUCER');
});

test('embeddings: a reference on the bus, packed float32 to the relay; the packed length must match dim', () => {
  const vector = [0.5, -0.25, 1e-3, Math.fround(Math.PI)];
  const p = pack(vector);
  assert.equal(p, { dtype: 'float32', dim: 4, base64: p.base64 });
  assert.ok(packedEmbedding.safeParse(p).success);
  assert.equal(unpack(p), vector.map((v) => Math.fround(v)));
  assert.not.ok(packedEmbedding.safeParse({ ...p, dim: 5 }).success, 'decoded bytes ≠ dim × 4');
  assert.not.ok(packedEmbedding.safeParse({ ...p, base64: `${p.base64}AAAA` }).success, 'one float too many');
  assert.not.ok(packedEmbedding.safeParse({ ...p, base64: '!!!!' }).success, 'not base64');
  for (const dim of [1280, 4096]) assert.ok(packedEmbedding.safeParse(pack(Array.from({ length: dim }, (_, i) => Math.sin(i)))).success, `${dim}-d packs within the schema's bounds`);
  const ref = { ref: { sha256: 'a'.repeat(64), model: 'mobilenet_v2_100_224_quant' }, dim: 1280, dtype: 'float32' };
  assert.ok(embeddingValue.safeParse(ref).success);
  assert.ok(embeddingValue.safeParse(p).success);
  assert.ok(embeddingValue.safeParse(vector).success, 'plain numbers from gateways older than packing are still taken');
  assert.not.ok(embeddingValue.safeParse([1, Number.NaN]).success, 'but only finite ones');
  assert.not.ok(embeddingValue.safeParse([]).success, 'and at least one');
  assert.not.ok(embeddingValue.safeParse({ ...ref, extra: 1 }).success);
});

test('checked-in AsyncAPI and JSON Schema documents match the code (run `npm run docs:generate` after changing a schema)', () => {
  const drift: string[] = [];
  const docs = generatedDocs();
  for (const [rel, content] of docs) {
    const file = path.join(ROOT, rel);
    if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== content) drift.push(rel);
  }
  const onDisk = fs.readdirSync(path.join(ROOT, 'docs/schemas')).map((f) => `docs/schemas/${f}`);
  for (const f of onDisk) if (!docs.has(f)) drift.push(`${f} (stale)`);
  assert.equal(drift, [], `documents drifted from the code: ${drift.join(', ')}; run npm run docs:generate`);
});

test.run();
