import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '@tu/shared';
import { inject, startAllHandlers, startTestAgent, testConfig, until } from './support/harness.js';
import { photoBytes } from './support/data.js';
import { startTestRelay } from './support/relay.js';

// A gateway without a real-time clock boots after a power cut with its wall clock off (1970, or
// the time it last saved), often offline, so NTP sets it later, by years. What the agent says
// about durations must not follow that jump (agent/src/uplink/outbox.ts and
// test/uplink.outbox.test.ts for the outbox's ages, test/orchestrator.robustness.test.ts for
// analyses).
test('health uptime counts the time the agent ran, not the wall clock being set', async () => {
  const clock = new ManualClock(Date.UTC(1970, 0, 1));
  const agent = await startTestAgent({ clock, config: testConfig() });
  try {
    const uptime = async () => (await inject(agent, { method: 'GET', url: '/api/v1/health' })).json<{ uptimeS: number }>().uptimeS;
    clock.advance(90_000);
    assert.is(await uptime(), 90);
    clock.setWall(Date.UTC(2026, 10, 30));
    assert.is(await uptime(), 90, 'NTP setting the clock 56 years ahead');
    clock.setWall(Date.UTC(1969, 0, 1));
    assert.is(await uptime(), 90, 'and back');
  } finally {
    await agent.stop();
  }
});

test('the intake journal is cleared once the orchestrator has the upload, whatever is done to the wall clock', async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const agent = await startTestAgent({ clock, config: testConfig() });
  const handlers = await startAllHandlers(agent);
  try {
    const unacknowledged = async () => (await inject(agent, { method: 'GET', url: '/api/v1/health' })).json<{ intake: { unacknowledged: number } }>().intake.unacknowledged;
    for (const [what, wall] of [['set back a year (a clock that was ahead, corrected)', Date.UTC(2025, 0, 1)], ['set ahead 56 years (NTP reaching a gateway booted at 1970)', Date.UTC(2082, 0, 1)]] as const) {
      const res = await inject(agent, { method: 'POST', url: '/api/v1/images', payload: photoBytes('forklift/imagenet_n03384352_forklift.jpg'), headers: { 'content-type': 'image/jpeg' } });
      assert.is(res.statusCode, 202, res.body);
      const { analysisId } = res.json<{ analysisId: string }>();
      await until(() => agent.orchestrator.status(analysisId) !== undefined, 5000, 'the orchestrator has it');
      // A sweep (every second, real time) sees the orchestrator knowing it, then the clock is set.
      await new Promise((r) => setTimeout(r, 1_200));
      clock.setWall(wall);
      // The sweep (every second) clears an entry the orchestrator has known for a full sweep interval.
      clock.advance(2_000);
      const end = Date.now() + 4_000;
      while (Date.now() < end && (await unacknowledged()) > 0) await new Promise((r) => setTimeout(r, 100));
      assert.is(await unacknowledged(), 0, `wall clock ${what}: the journal still holds the upload (its photo stays pinned against the quota)`);
    }
  } finally {
    for (const h of handlers) await h.close();
    await agent.stop();
  }
});

test('relay health uptime counts the time the relay ran, not the wall clock being set', async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const relay = await startTestRelay({ clock });
  try {
    const uptime = async () => ((await (await fetch(`${relay.url}/api/v1/health`)).json()) as { uptimeS: number }).uptimeS;
    clock.advance(90_000);
    assert.is(await uptime(), 90);
    clock.setWall(Date.UTC(2083, 0, 1));
    assert.is(await uptime(), 90);
  } finally {
    await relay.stop();
  }
});

test.run();
