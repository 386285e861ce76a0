import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { BusClient } from '@tu/shared';
import type { Agent } from '@tu/agent';
import { uploaded } from './support/fixtures.js';
import { intake, observer, ofType, settle, startHandler, startTestAgent } from './support/harness.js';

// Bus clients have clean sessions, so the broker drops a QoS 1 delivery in flight when the
// connection goes, just as it would a QoS 0 one: they subscribe at QoS 0 and the broker neither
// waits for nor tracks a PUBACK per delivered message (shared/src/bus/client.ts #subscribe).
// Publishes stay QoS 1. bench/orchestrator.bench.ts measures what that buys.

const test = suite('bus delivery: subscriptions at QoS 0, publishes at QoS 1');

test('a whole analysis goes through without one delivery acknowledged to the broker; every publish is acknowledged by it', async () => {
  const agent = await startTestAgent();
  const clients: BusClient[] = [];
  try {
    await oneAnalysis(agent, clients);
  } finally {
    for (const c of clients) await c.close();
    await agent.stop();
  }
});

async function oneAnalysis(agent: Agent, clients: BusClient[]): Promise<void> {
  const { aedes } = agent.broker;
  let deliveriesAcked = 0;
  aedes.on('ack', () => deliveriesAcked++);
  const granted: string[] = [];
  aedes.on('subscribe', (subs, client) => granted.push(...subs.map((s) => `${client.id} ${s.topic} qos ${s.qos}`)));
  const handlers = await Promise.all((['recognition', 'comparison', 'metadata'] as const).map((s) => startHandler(agent, s)));
  const obs = await observer(agent);
  const up = await intake(agent);
  clients.push(...handlers, obs.bus, up);

  const data = uploaded('gw-test');
  // publishEvent resolves on the broker's PUBACK (QoS 1): the upload reached the broker.
  await up.publishEvent('tu.image.uploaded', data, { subject: data.analysisId });
  await obs.waitFor((ev) => ofType(ev, 'analysis.completed', data.analysisId).length === 1);
  await settle(50);

  assert.is(ofType(obs.events, 'analysis.started', data.analysisId).length, 1);
  assert.is(agent.orchestrator.status(data.analysisId)?.status, 'completed');
  assert.is(deliveriesAcked, 0, 'commands and events reached the orchestrator, the handlers and the observer at QoS 0');
  assert.ok(granted.length >= 4, granted.join('; ')); // three handlers' commands, the observer's events
  assert.equal(granted.filter((g) => !g.endsWith('qos 0')), []);
}

test.run();
