import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  checkGatewayPublish,
  GATEWAY_EVENT_TYPES,
  gatewayPublishGrants,
  gatewayStatusPayload,
  gatewayTopics,
  mosquittoAcl,
  natsAllows,
  natsPermissions,
  natsSubject,
  parseGatewayStatus,
  rabbitmqBindingKey,
  rabbitmqRelayBindingKeys,
  rabbitmqRoutingKey,
  rabbitmqTopicAnswer,
  relaySubscriptions,
  topicMatches,
  topicOfRabbitmqKey,
  topics,
} from '@tu/shared';
import { generatedDocs, ROOT } from '../scripts/docs.js';

/**
 * One gateway contract (shared/src/gateway-contract.ts), several enforcement points. For a table
 * of topics and identities every point must give the same allow/deny: the contract's own check
 * (the embedded ingress and the test relay of test/support/relay-ingress.ts call it), the
 * generated Mosquitto ACL (read back and evaluated the way Mosquitto does), the RabbitMQ
 * auth-backend answer and the NATS permissions. test/relay.mosquitto.test.ts asks a real Mosquitto.
 */

/** Mosquitto's ACL semantics for what this file uses: `user` blocks with `topic read|write`, and `pattern` lines with %u. */
function mosquittoMay(acl: string, user: string, access: 'read' | 'write', topic: string): boolean {
  let current: string | undefined;
  for (const line of acl.split('\n')) {
    const [kw, ...rest] = line.trim().split(/\s+/);
    if (kw === 'user') current = rest.join(' ');
    else if ((kw === 'topic' && current === user) || kw === 'pattern') {
      const [acc, filter] = rest.length === 2 ? rest : ['readwrite', rest[0]!];
      const f = kw === 'pattern' ? filter!.replace(/%u/g, user) : filter!;
      if ((acc === access || acc === 'readwrite') && (access === 'read' ? f === topic || topicMatches(f, topic) : topicMatches(f, topic))) return true;
    }
  }
  return false;
}

const GW = 'gw-a';
/** [publisher, topic, allowed] — non-retained publishes. */
const TABLE: [string, string, boolean][] = [
  [GW, topics.event(GW, 'analysis.completed'), true],
  [GW, topics.event(GW, 'recognition.labelled'), true],
  [GW, `${topics.anyEvent(GW).slice(0, -1)}not.a.type`, true], // the broker lets it through; the relay's decode rejects the type (acknowledged, counted)
  [GW, topics.gatewayStatus(GW), true],
  [GW, topics.event('gw-b', 'analysis.completed'), false],
  [GW, topics.gatewayStatus('gw-b'), false],
  [GW, `${topics.anyEvent(GW).slice(0, -1)}a/b`, false],
  [GW, topics.command(GW, 'analysis.metadata.request', 'x'), false],
  [GW, topics.presence(GW, 'metadata-service', 'i1'), false],
  [GW, topics.deadLetter(GW, 'metadata-service'), false],
  [GW, `${topics.gatewayStatus(GW)}/more`, false],
  [GW, `tu/${GW}`, false],
  [GW, `tu/${GW}/evt`, false],
  [GW, `tu/${GW}/sys`, false],
  [GW, `other/${GW}/evt/analysis.completed`, false],
  [GW, `tu/${GW}/status`, false],
  ['gw-a2', topics.event(GW, 'analysis.completed'), false], // a prefix of another id is not that id
];

test('every enforcement point gives the same allow/deny for the table of topics', () => {
  const acl = mosquittoAcl('relay');
  const disagree: string[] = [];
  for (const [gw, topic, want] of TABLE) {
    const says = {
      contract: checkGatewayPublish(gw, topic, false).ok,
      mosquitto: mosquittoMay(acl, gw, 'write', topic),
      rabbitmq: rabbitmqTopicAnswer({ username: gw, resource: 'topic', name: 'amq.topic', permission: 'write', routing_key: rabbitmqRoutingKey(topic) }, { relayUser: 'relay' }) === 'allow',
      nats: natsAllows(natsPermissions({ gateway: gw }).publish, natsSubject(topic)),
    };
    // RabbitMQ's routing keys cannot tell `evt/a/b` from `evt/a.b`: it judges the topic the relay reads back from the key.
    const rabbitWant = checkGatewayPublish(gw, topicOfRabbitmqKey(rabbitmqRoutingKey(topic)), false).ok;
    for (const [point, v] of Object.entries(says)) {
      const expected = point === 'rabbitmq' ? rabbitWant : want;
      if (v !== expected) disagree.push(`${point} says ${v ? 'allow' : 'deny'} for ${gw} → ${topic}`);
    }
  }
  assert.equal(disagree, []);
});

test('the uplink publishes only allowed topics: every event type crossing, and its status', () => {
  for (const t of GATEWAY_EVENT_TYPES) {
    const topic = gatewayTopics.event(GW, t);
    assert.ok(checkGatewayPublish(GW, topic, false).ok, topic);
    assert.not.ok(checkGatewayPublish(GW, topic, true).ok, `${topic} retained`);
    assert.ok(mosquittoMay(mosquittoAcl('relay'), GW, 'write', topic), `mosquitto ${topic}`);
    assert.ok(natsAllows(natsPermissions({ gateway: GW }).publish, natsSubject(topic)), `nats ${topic}`);
    assert.is(rabbitmqTopicAnswer({ username: GW, resource: 'topic', name: 'amq.topic', permission: 'write', routing_key: rabbitmqRoutingKey(topic) }, { relayUser: 'relay' }), 'allow', `rabbitmq ${topic}`);
  }
  assert.ok(checkGatewayPublish(GW, gatewayTopics.status(GW), true).ok, 'status retained');
  assert.is(parseGatewayStatus(gatewayStatusPayload(true)), true);
  assert.is(parseGatewayStatus(gatewayStatusPayload(false)), false);
  assert.is(parseGatewayStatus('nope'), undefined);
});

test('gateways subscribe to nothing; the relay reads exactly its subscriptions, everywhere', () => {
  const acl = mosquittoAcl('relay');
  const subs = relaySubscriptions();
  assert.equal(subs, gatewayPublishGrants('+').map((g) => g.filter));
  for (const f of subs) {
    assert.ok(mosquittoMay(acl, 'relay', 'read', f), `mosquitto relay reads ${f}`);
    assert.not.ok(mosquittoMay(acl, GW, 'read', f), `mosquitto gateway reads ${f}`);
    assert.is(rabbitmqTopicAnswer({ username: 'relay', resource: 'topic', name: 'amq.topic', permission: 'read', routing_key: rabbitmqBindingKey(f) }, { relayUser: 'relay' }), 'allow');
    assert.is(rabbitmqTopicAnswer({ username: GW, resource: 'topic', name: 'amq.topic', permission: 'read', routing_key: rabbitmqBindingKey(f) }, { relayUser: 'relay' }), 'deny');
    assert.ok(natsAllows(natsPermissions({ relay: true }).subscribe, natsSubject(f)));
    assert.not.ok(natsAllows(natsPermissions({ gateway: GW }).subscribe, natsSubject(f)));
  }
  assert.not.ok(mosquittoMay(acl, 'relay', 'write', topics.event(GW, 'analysis.completed')), 'the relay writes nothing');
  assert.is(rabbitmqTopicAnswer({ username: 'relay', resource: 'topic', name: 'amq.topic', permission: 'write', routing_key: 'tu.gw-a.evt.analysis.completed' }, { relayUser: 'relay' }), 'deny');
  assert.is(rabbitmqTopicAnswer({ username: 'relay', resource: 'topic', name: 'amq.topic', permission: 'read', routing_key: '#' }, { relayUser: 'relay' }), 'deny', 'not everything');
  // AMQP topic matching: `*` one word, `#` any number; an event type is two words or more.
  const amqpMatches = (binding: string, key: string): boolean => {
    const m = (b: string[], k: string[]): boolean => (b.length === 0 ? k.length === 0 : b[0] === '#' ? m(b.slice(1), k) || (k.length > 0 && m(b, k.slice(1))) : k.length > 0 && (b[0] === '*' || b[0] === k[0]) && m(b.slice(1), k.slice(1)));
    return m(binding.split('.'), key.split('.'));
  };
  for (const type of GATEWAY_EVENT_TYPES) {
    const key = rabbitmqRoutingKey(topics.event(GW, type));
    assert.is(rabbitmqRelayBindingKeys().filter((b) => amqpMatches(b, key)).length, 1, `the relay's queue is bound to ${key} once`);
  }
  assert.ok(rabbitmqRelayBindingKeys().some((b) => amqpMatches(b, rabbitmqRoutingKey(topics.gatewayStatus(GW)))), 'and to the status');
  assert.is(rabbitmqTopicAnswer({ username: GW, resource: 'topic', name: 'other', permission: 'write', routing_key: 'tu.gw-a.sys.status' }, { relayUser: 'relay' }), 'deny', 'other exchange');
  assert.is(rabbitmqTopicAnswer({ username: GW, resource: 'topic', name: 'amq.topic', permission: 'write', routing_key: 'tu.gw-a.evt.*' }, { relayUser: 'relay' }), 'deny', 'wildcard key');
});

test('retained events are refused; ids that would break a dotted broker are refused there', () => {
  assert.equal(checkGatewayPublish(GW, topics.event(GW, 'analysis.completed'), true), { ok: false, reason: 'events must not be retained' });
  assert.not.ok(checkGatewayPublish('gw+', 'tu/gw+/sys/status', false).ok);
  assert.not.ok(checkGatewayPublish(GW, `tu/${GW}/evt/`, false).ok, 'empty type level');
  assert.throws(() => natsPermissions({ gateway: 'gw.a' }), /NATS subject token/);
  assert.is(rabbitmqTopicAnswer({ username: 'gw.a', resource: 'topic', name: 'amq.topic', permission: 'write', routing_key: 'tu.gw.a.sys.status' }, { relayUser: 'relay' }), 'deny');
  assert.throws(() => mosquittoAcl('relay user'), /plain name/);
});

test('the Mosquitto ACL and the NATS permissions are what the contract says (golden)', () => {
  assert.is(mosquittoAcl('relay'), ['user relay', 'topic read tu/+/evt/+', 'topic read tu/+/sys/status', '', 'pattern write tu/%u/evt/+', 'pattern write tu/%u/sys/status', ''].join('\n'));
  assert.equal(natsPermissions({ gateway: 'gw-1' }), { publish: { allow: ['tu.gw-1.evt.*', 'tu.gw-1.sys.status'] }, subscribe: { allow: [], deny: ['>'] } });
  assert.equal(natsPermissions({ relay: true }), { publish: { allow: [] }, subscribe: { allow: ['tu.*.evt.*', 'tu.*.sys.status'], deny: [] } });
  assert.is(natsSubject('tu/gw-1/evt/analysis.completed'), 'tu.gw-1.evt.analysis//completed');
});

test('no copy of the contract is left: the test Mosquitto writes the generated ACL; the README section is generated', () => {
  const mosq = fs.readFileSync(path.join(ROOT, 'test/support/mosquitto.ts'), 'utf8');
  assert.ok(mosq.includes('mosquittoAcl(relayUser)'), 'test/support/mosquitto.ts writes mosquittoAcl()');
  assert.not.ok(/pattern write|topic read/.test(mosq), 'no hand-written ACL line in test/support/mosquitto.ts');
  const readme = fs.readFileSync(path.join(ROOT, 'relay/README.md'), 'utf8');
  assert.is(readme, generatedDocs().get('relay/README.md'), 'relay/README.md contract section drifted; run npm run docs:generate');
  // The hand-built topic strings that used to restate the rule are gone from the enforcement points.
  for (const f of ['agent/src/uplink/forwarder.ts', 'relay/src/ingress/embedded.ts', 'relay/src/ingress/external.ts', 'test/support/relay-ingress.ts']) {
    const src = fs.readFileSync(path.join(ROOT, f), 'utf8');
    assert.not.ok(/`tu\/\$\{|'tu\//.test(src), `${f} builds a contract topic by hand`);
  }
});

test.run();
