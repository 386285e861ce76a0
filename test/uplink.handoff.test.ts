/**
 * Terminal events and the uplink outbox: an analysis closes in the orchestrator's state store
 * only once its terminal event is on disk in the outbox (agent/src/uplink/handoff.ts); until
 * then a restart re-publishes it with the same id. The kill -9 side is in uplink.crash.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock, type AnyEvent } from '@tu/shared';
import { TerminalHandoff } from '@tu/agent/internal/uplink/handoff';
import { uploaded } from './support/fixtures.js';
import { intake, observer, startAllHandlers, startTestAgent, testConfig, tmpDir, until } from './support/harness.js';
import { TestRelay } from './support/relay-ingress.js';
import { freePort } from './support/processes.js';

const GW = 'gw-test';
const SECRET = 'gateway-secret-gw-test';
const isTerminal = (e: AnyEvent) => e.type === 'analysis.completed' || e.type === 'analysis.failed';

test('handoff: either side may come first; waiters time out on the injected clock; unclaimed outcomes are bounded', async () => {
  const clock = new ManualClock();
  const h = new TerminalHandoff({ clock, timeoutMs: 1000, maxUnclaimed: 3 });
  // Outbox first, orchestrator second.
  h.record('a', Promise.resolve(true));
  assert.is(await h.onDisk('a'), true);
  // Orchestrator first: it waits for the commit.
  let commit!: (v: boolean) => void;
  const waiting = h.onDisk('b');
  h.record('b', new Promise<boolean>((r) => (commit = r)));
  commit(true);
  assert.is(await waiting, true);
  // Refused by the outbox: false (the record stays open).
  h.record('c', Promise.resolve(false));
  assert.is(await h.onDisk('c'), false);
  // Never reaches the uplink: false after timeoutMs, not before.
  let late: boolean | undefined;
  void h.onDisk('d').then((v) => (late = v));
  clock.advance(999);
  await Promise.resolve();
  assert.is(late, undefined, 'still waiting before the timeout');
  clock.advance(1);
  await Promise.resolve();
  assert.is(late, false);
  assert.equal(h.size, { waiting: 0, unclaimed: 0 });
  // Unclaimed outcomes: at most maxUnclaimed, oldest forgotten (its waiter would time out: re-sent at the next start).
  for (const id of ['e1', 'e2', 'e3', 'e4', 'e5']) h.record(id, Promise.resolve(true));
  assert.is(h.size.unclaimed, 3);
  assert.is(await h.onDisk('e5'), true);
  // Stopping answers every waiter false.
  const pending = h.onDisk('f');
  h.close();
  assert.is(await pending, false);
  assert.is(clock.pendingTimers, 0);
});

test('outbox full (refuse-new): the refused terminal event keeps its analysis open; the next start re-sends it (same id) and the relay gets it once', async () => {
  const dataDir = tmpDir('tu-handoff-');
  const relay = new TestRelay({ [GW]: SECRET });
  relay.port = await freePort();
  const config = (maxEvents: number) =>
    testConfig(
      {
        'uplink.url': `mqtt://127.0.0.1:${relay.port}`,
        'uplink.password': SECRET,
        'uplink.reconnect.initialDelayMs': 20,
        'uplink.reconnect.maxDelayMs': 100,
        'uplink.outbox.maxEvents': maxEvents,
        'uplink.outbox.whenFull': 'refuse-new',
      },
      dataDir,
    );
  // Life 1: relay down, room for 5 events: uploaded, started and the 3 step events; the terminal one is refused.
  let agent = await startTestAgent({ config: config(5) });
  let terminal: AnyEvent | undefined;
  try {
    const handlers = await startAllHandlers(agent);
    const obs = await observer(agent);
    const bus = await intake(agent);
    const d = uploaded(GW);
    await bus.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
    await obs.waitFor((es) => es.some((e) => e.subject === d.analysisId && isTerminal(e)), 10_000);
    terminal = obs.events.find((e) => e.subject === d.analysisId && isTerminal(e))!;
    await until(() => agent.uplink.outbox!.stats.refused >= 1, 5000, 'the outbox to refuse the terminal event');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(
      agent.store.loadOpen().map((s) => [s.analysisId, s.status, s.terminal?.event.id]),
      [[d.analysisId, 'completed', terminal.id]],
      'the analysis is ended but stays open: its terminal event is not on disk in the outbox',
    );
    for (const c of [...handlers, obs.bus, bus]) await c.close();
  } finally {
    await agent.stop();
  }
  // Life 2: room again, relay up: the orchestrator re-publishes the same event, the outbox keeps it, the record closes.
  await relay.start();
  agent = await startTestAgent({ config: config(100) });
  try {
    await until(() => relay.received.firstSeen.includes(terminal!.id), 10_000, 'the terminal event at the relay');
    await until(() => agent.store.loadOpen().length === 0, 5000, 'the analysis to close');
    assert.is(relay.received.all.filter((r) => r.subject === terminal!.subject && (r.type === 'analysis.completed' || r.type === 'analysis.failed')).length, 1, 'one terminal event at the relay');
  } finally {
    await agent.stop();
    await relay.stop();
  }
});

test.run();
