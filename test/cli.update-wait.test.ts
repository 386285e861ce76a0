import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitHealthy } from '@tu/agent/internal/cli/update';

// `tu-agent update` waits for the new version's health after switching to it. On a gateway
// without a real-time clock NTP sets the time soon after boot, often by years: the wait must not
// end then, or a good update is reported unhealthy and rolled back (agent/src/cli/update.ts).
test('the update keeps waiting for health when the wall clock jumps a year ahead meanwhile', async () => {
  // The new version answers healthy 0.8 s after the switch.
  const startedAt = performance.now();
  const server = http.createServer((_req, res) => {
    const ready = performance.now() - startedAt > 800;
    res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: ready ? 'ok' : 'degraded', gatewayId: 'gw-1', agent: { version: '0.2.0' }, uptimeS: 1 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const realNow = Date.now.bind(Date);
  try {
    const waiting = waitHealthy((server.address() as AddressInfo).port, '0.2.0', 10_000);
    await new Promise((r) => setTimeout(r, 300));
    // NTP, a year ahead, while the new version starts.
    Date.now = () => realNow() + 365 * 24 * 3600_000;
    assert.equal(await waiting, { ok: true });
  } finally {
    Date.now = realNow;
    await new Promise((r) => server.close(r));
  }
});

test.run();
