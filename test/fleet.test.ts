import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { embeddedBroker } from '../bench/fleet/broker.js';
import { runFleet, summaryLine, type FleetResult } from '../bench/fleet/run.js';

/**
 * The fleet load and fault test (bench/fleet.bench.ts), small: 500 gateways with their own
 * logins on 2 relay instances (production build, PostgreSQL, Redis), 20 s of analyses, one relay
 * instance killed with SIGKILL and restarted during the load. Nothing acknowledged may be lost,
 * nothing stored twice. Figures are the bench's business; this checks correctness only.
 */
const test = suite<{ r?: FleetResult }>('fleet: 500 gateways, one relay instance killed under load');

// The check outside the project reads this line; its format is fixed (issue 11).
const SUMMARY = /^fleet: gateways=(\d+) events_per_s=(\d+) p99_ms=(\d+) lost=(\d+) duplicated=(\d+) out_of_order=(\d+)$/;

test('every acknowledged event is stored exactly once across a relay kill; the summary line parses', async (ctx) => {
  const lines: string[] = [];
  const r = await runFleet({ gateways: 500, relays: 2, seconds: 20, rates: [600], subscribers: 20, killRelayAt: 0.35, waveSize: 250 }, embeddedBroker(), (l) => lines.push(l));
  ctx.r = r;
  assert.is(r.connected, 500, lines.join('\n'));
  assert.ok(r.faults.some((f) => f.includes('killed')) && r.faults.some((f) => f.includes('back')), `the kill and restart happened: ${r.faults.join('; ')}`);
  assert.ok(r.sim.disconnects > 0, 'the killed instance had gateways that lost their connection');
  assert.is(r.rejected, 0, 'every simulated event passes the relay validation');
  assert.ok(r.drained, 'every outbox emptied after the run');
  assert.ok(r.sim.acked > 1000, `events acknowledged (${r.sim.acked})`);
  assert.is(r.check.stored, r.sim.acked, 'stored = acknowledged');
  assert.is(r.check.lost, 0);
  assert.is(r.check.duplicated, 0);
  assert.ok(r.latencySamples > 0, 'subscribers received events');
  const m = SUMMARY.exec(summaryLine(r));
  assert.ok(m, summaryLine(r));
  assert.is(Number(m![1]), 500);
  assert.is(Number(m![4]), 0);
  assert.is(Number(m![5]), 0);
});

test.run();
