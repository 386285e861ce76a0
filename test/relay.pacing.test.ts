/**
 * New gateway connections wait their turn (relay/src/ingress/connect-pacer.ts): handed to the
 * broker in arrival order at ingress.limits.connectsPerSecond, while the gateways already
 * connected keep being served.
 */
import { PassThrough } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { MqttClient } from 'mqtt';
import { ConnectPacer } from '@tu/relay/internal/ingress/connect-pacer';
import { until } from './support/harness.js';
import { addGateway, analysisFlow, connectGateway, publishEvent, startTestRelay } from './support/relay.js';

const test = suite('relay ingress: new connections paced');

const limits = { burst: 2, perSecond: 50, maxWaiting: 100, maxWaitMs: 10_000 };

test('connections past the burst start one per token, in arrival order; one closed while waiting is skipped', async () => {
  const started: number[] = [];
  const conns = Array.from({ length: 6 }, () => new PassThrough());
  const pacer = new ConnectPacer(limits, { now: () => Date.now(), start: (c) => started.push(conns.indexOf(c as PassThrough)) });
  conns.forEach((c) => pacer.offer(c));
  assert.equal(started, [0, 1], 'the burst starts at once');
  assert.equal(pacer.stats, { waiting: 4, paced: 4, refusedFull: 0, expired: 0 });
  conns[3]!.destroy();
  await until(() => pacer.stats.waiting === 0, 2000);
  assert.equal(started, [0, 1, 2, 4, 5], 'the rest in order, without the one that closed');
  assert.is(pacer.stats.paced, 4);
  // Closing drops whoever still waits.
  const late = [new PassThrough(), new PassThrough(), new PassThrough(), new PassThrough()];
  late.forEach((c) => pacer.offer(c));
  pacer.close();
  assert.ok(late.slice(1).every((c) => c.destroyed), 'waiting connections destroyed on close');
  assert.is(pacer.stats.waiting, 0);
});

test('an error on a waiting connection (a reset) is handled, not thrown; the queue is bounded in size and in time', async () => {
  const started: PassThrough[] = [];
  const refused: string[] = [];
  let now = 0;
  const pacer = new ConnectPacer({ burst: 1, perSecond: 1, maxWaiting: 2, maxWaitMs: 500 }, { now: () => now, start: (c) => started.push(c as PassThrough), onRefused: (why) => refused.push(why) });
  const [first, reset, waits, over] = [new PassThrough(), new PassThrough(), new PassThrough(), new PassThrough()];
  pacer.offer(first);
  pacer.offer(reset);
  pacer.offer(waits);
  // Without the pacer's own error listener this would be an uncaught 'error': the process would exit.
  reset.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
  await new Promise((r) => setImmediate(r));
  assert.is(pacer.stats.waiting, 1, 'the reset one left the queue');
  pacer.offer(over);
  pacer.offer(new PassThrough());
  assert.equal(refused, ['full'], 'beyond maxWaiting: refused');
  assert.ok(!over.destroyed && pacer.stats.waiting === 2);
  // Past maxWaitMs (injected clock), whoever still waits is closed, not started.
  now = 10_000;
  await until(() => pacer.stats.waiting === 0, 3000);
  assert.equal(started, [first], 'only the first got its turn');
  assert.ok(waits.destroyed && over.destroyed, 'the ones that waited too long are closed');
  assert.equal(refused, ['full', 'expired', 'expired']);
  pacer.close();
});

test('a connected gateway keeps getting its events acknowledged while newcomers wait their turn', async () => {
  const relay = await startTestRelay({ overrides: { 'ingress.limits.connectBurst': 1, 'ingress.limits.connectsPerSecond': 5 } });
  const clients: MqttClient[] = [];
  try {
    const secrets = new Map<string, string>();
    for (let i = 0; i < 12; i++) secrets.set(`gw-pace-${i}`, await addGateway(relay, `gw-pace-${i}`, 'pace'));
    const [first, ...rest] = [...secrets];
    clients.push(await connectGateway(relay.mqttUrl, first![0], first![1]));
    // Eleven at once: one token a 200 ms, so they take about two seconds to get in.
    const newcomers = rest.map(([id, secret]) => connectGateway(relay.mqttUrl, id, secret).then((c) => (clients.push(c), c)));
    await until(() => (relay.deps.ingress()?.pacing?.waiting ?? 0) >= 5, 2000);
    const [event] = analysisFlow(first![0]);
    assert.is(await publishEvent(clients[0]!, first![0], event!), 'ok', 'acknowledged (stored)');
    assert.ok((relay.deps.ingress()?.pacing?.waiting ?? 0) > 0, 'while others were still waiting');
    await Promise.all(newcomers);
    assert.is(clients.length, 12, 'every newcomer got in');
    assert.ok((relay.deps.ingress()?.pacing?.paced ?? 0) >= 10, 'and most of them waited');
    const metrics = await (await fetch(`${relay.url}/metrics`)).text();
    assert.match(metrics, /^tu_relay_ingress_connects_paced_total \d+$/m);
  } finally {
    for (const c of clients) c.end(true);
    await relay.stop();
  }
});

test.run();
