import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '@tu/shared';
import { inject, startTestAgent, testConfig } from './support/harness.js';
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
