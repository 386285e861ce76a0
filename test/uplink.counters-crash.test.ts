/**
 * The uplink's counters in /metrics never go backwards across a kill -9. They are persisted with
 * the rows they count, one group commit at a time (agent/src/uplink/outbox-worker.ts), so an
 * increment not yet committed is lost by a crash; exposed before its commit, it made
 * tu_uplink_delivered_total read lower after the restart, which Prometheus takes for a reset.
 * The commit is held open here by a write lock on the outbox file (the agent's writer waits in
 * SQLite's busy_timeout, agent/src/sqlite.ts) while the relay acknowledges: deterministic, no race.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { BusClient, silentLogger } from '@tu/shared';
import { derivePassword } from '@tu/agent';
import { uploaded } from './support/fixtures.js';
import { startProcessHandlers, tmpDir, until } from './support/harness.js';
import { TestRelay } from './support/relay-ingress.js';
import { freePort, startProcess, stopProcess, writeProcessAgentConfig } from './support/processes.js';

const GW = 'gw-uplink-counters';
const BUS_SECRET = 'uplink-counters-bus-secret-uplink-counters-01';
const GW_SECRET = 'uplink-counters-gateway-secret';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const startAgentProcess = (configFile: string): Promise<ChildProcess> =>
  startProcess('agent/dist/main.js', ['--config', configFile], '"agent started"', { TU_BUS_SECRET: BUS_SECRET, TU_UPLINK_PASSWORD: GW_SECRET });

async function delivered(httpPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const m = /^tu_uplink_delivered_total (\d+)$/m.exec(text);
  if (!m) throw new Error(`no tu_uplink_delivered_total in /metrics:\n${text.slice(0, 500)}`);
  return Number(m[1]);
}

test('tu_uplink_delivered_total after a kill -9 and restart is never below what /metrics showed before', async () => {
  const dataDir = tmpDir('tu-uplink-counters-');
  const [busPort, httpPort, relayPort] = [await freePort(), await freePort(), await freePort()];
  const configFile = writeProcessAgentConfig(path.join(dataDir, 'agent.json'), {
    gatewayId: GW,
    dataDir,
    busPort,
    httpPort,
    extra: { uplink: { url: `mqtt://127.0.0.1:${relayPort}`, reconnect: { initialDelayMs: 50, maxDelayMs: 300, jitter: 0.2 } } },
  });
  const logger = silentLogger();
  const tcp = { kind: 'tcp' as const, host: '127.0.0.1', port: busPort };
  const relay = new TestRelay({ [GW]: GW_SECRET });
  let agent = await startAgentProcess(configFile);
  const clients: BusClient[] = [];
  let lock: Database.Database | undefined;
  try {
    clients.push(...(await startProcessHandlers({ gatewayId: GW, secret: BUS_SECRET, port: busPort, suffix: 'cc' })));
    const intake = await BusClient.connect({ gatewayId: GW, service: 'intake', instanceId: 'intake:cc', username: 'intake', password: derivePassword(BUS_SECRET, 'intake'), transport: tcp, logger });
    clients.push(intake);
    const outbox = new Database(path.join(dataDir, 'outbox.sqlite'));
    const completedOnDisk = () => (outbox.prepare("SELECT count(*) AS n FROM outbox WHERE type = 'analysis.completed'").get() as { n: number }).n;

    // Events queue (and are committed) while the relay is down.
    for (let i = 0; i < 5; i++) {
      const d = uploaded(GW);
      void intake.publishEvent('tu.image.uploaded', d, { subject: d.analysisId }).catch(() => undefined);
    }
    await until(() => completedOnDisk() === 5, 15_000, 'five completed analyses in the outbox');
    await sleep(300);
    const queued = (outbox.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
    outbox.close();

    // The outbox's next commit waits on this lock; the relay comes up and acknowledges meanwhile.
    lock = new Database(path.join(dataDir, 'outbox.sqlite'));
    lock.exec('BEGIN IMMEDIATE');
    await relay.start(relayPort);
    await until(() => relay.received.firstSeen.length === queued, 4000, 'the relay to take every queued event');
    await sleep(200); // the PUBACKs reach the agent
    const before = await delivered(httpPort);
    await stopProcess(agent, 'SIGKILL');
    lock.exec('ROLLBACK');
    lock.close();
    lock = undefined;
    await relay.stop(); // nothing is delivered again after the restart: what shows is what was on disk

    agent = await startAgentProcess(configFile);
    const after = await delivered(httpPort);
    console.log(`  ${queued} events acknowledged by the relay while their commit was held; tu_uplink_delivered_total ${before} before the kill -9, ${after} after the restart`);
    assert.ok(after >= before, `tu_uplink_delivered_total went backwards across kill -9: ${before} → ${after}`);

    // Once the relay is back the re-sent events are delivered and counted, committed.
    await relay.start(relayPort);
    const by = Date.now() + 10_000;
    while ((await delivered(httpPort)) < queued) {
      if (Date.now() > by) throw new Error(`delivered stays at ${await delivered(httpPort)} < ${queued}`);
      await sleep(50);
    }
  } finally {
    lock?.close();
    await stopProcess(agent);
    for (const c of clients) await c.close();
    await relay.stop();
  }
});

test.run();
