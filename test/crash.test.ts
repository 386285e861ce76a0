import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { BusClient, silentLogger, type AnyEvent } from '@tu/shared';
import { derivePassword, observerUsername } from '@tu/agent';
import { uploaded } from './support/fixtures.js';
import { startProcessHandlers, tmpDir, until } from './support/harness.js';
import { freePort, startProcess, writeProcessAgentConfig } from './support/processes.js';

const GW = 'gw-crash';
const SECRET = 'crash-test-secret-crash-test-secret-0001';

const startAgentProcess = (configFile: string) =>
  startProcess('agent/dist/main.js', ['--config', configFile], '"agent started"', { TU_BUS_SECRET: SECRET, LOG_LEVEL: 'info' });

const tcp = (port: number) => ({ kind: 'tcp' as const, host: '127.0.0.1', port });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('kill -9 mid-analysis, many times: every accepted analysis ends exactly once', async () => {
  const dataDir = tmpDir('tu-crash-');
  const port = await freePort();
  const configFile = writeProcessAgentConfig(path.join(dataDir, 'agent.json'), {
    gatewayId: GW,
    dataDir,
    busPort: port,
    httpPort: 0,
    extra: { orchestrator: { durability: 'full', maxConcurrent: 8, plan: { recognition: { timeoutMs: 3000 }, comparison: { timeoutMs: 3000 }, metadata: { timeoutMs: 3000 } } } },
  });
  const logger = silentLogger();
  let agent = await startAgentProcess(configFile);

  // Handler instances in this process, over TCP; they reconnect after each crash.
  const handlers = await startProcessHandlers({ gatewayId: GW, secret: SECRET, port, suffix: 'crash', before: () => sleep(Math.random() * 40) });
  const events: AnyEvent[] = [];
  const obs = await BusClient.connect({
    gatewayId: GW,
    service: 'intake',
    instanceId: 'observer:crash',
    username: observerUsername('crash'),
    password: derivePassword(SECRET, observerUsername('crash')),
    transport: tcp(port),
    logger,
  });
  await obs.onEvents('all', (e) => {
    events.push(e);
  });
  const intake = await BusClient.connect({
    gatewayId: GW,
    service: 'intake',
    instanceId: 'intake:crash',
    username: 'intake',
    password: derivePassword(SECRET, 'intake'),
    transport: tcp(port),
    logger,
  });

  // An upload counts as accepted once the orchestrator has announced it; until then the
  // intake re-publishes it (same analysisId) after every restart, as a durable intake must.
  const uploads = new Map<string, ReturnType<typeof uploaded>>();
  const acknowledged = (id: string) => events.some((e) => e.subject === id && e.type !== 'tu.image.uploaded');
  const CYCLES = 12;
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    for (const [id, d] of uploads) if (!acknowledged(id)) void intake.publishEvent('tu.image.uploaded', d, { subject: id }).catch(() => undefined);
    const stopAt = Date.now() + 300 + Math.random() * 500;
    while (Date.now() < stopAt) {
      const d = uploaded(GW);
      uploads.set(d.analysisId, d);
      void intake.publishEvent('tu.image.uploaded', d, { subject: d.analysisId }).catch(() => undefined);
      await sleep(8);
    }
    if (process.env.DEBUG_CRASH) console.log('cycle', cycle, 'uploads', uploads.size);
    agent.kill('SIGKILL');
    await new Promise((r) => agent.once('exit', r));
    agent = await startAgentProcess(configFile);
    await until(() => handlers.every((h) => h.connected) && intake.connected && obs.connected, 10_000, 'clients to reconnect');
  }
  // Last life: let everything drain.
  for (const [id, d] of uploads) if (!acknowledged(id)) void intake.publishEvent('tu.image.uploaded', d, { subject: id }).catch(() => undefined);
  let lastLog = 0;
  const db = () => new Database(path.join(dataDir, 'orchestrator.sqlite'), { readonly: true });
  await until(
    () => {
      const d = db();
      const open = (d.prepare('SELECT count(*) AS n FROM analyses WHERE open = 1').get() as { n: number }).n;
      const total = (d.prepare('SELECT count(*) AS n FROM analyses').get() as { n: number }).n;
      d.close();
      if (process.env.DEBUG_CRASH && Date.now() - lastLog > 2000) {
        lastLog = Date.now();
        console.log(new Date().toISOString(), 'open', open, 'total', total, 'uploads', uploads.size);
      }
      return open === 0 && total === uploads.size;
    },
    30_000,
    'every analysis to end',
  );
  await sleep(200);
  agent.kill('SIGTERM');
  await new Promise((r) => agent.once('exit', r));
  for (const c of [...handlers, obs, intake]) await c.close();

  const rows = db().prepare('SELECT id, status, open, state FROM analyses').all() as { id: string; status: string; open: number; state: string }[];
  assert.is(rows.length, uploads.size, 'every upload became an analysis');
  let completed = 0;
  let overlapping = 0;
  for (const r of rows) {
    const st = JSON.parse(r.state) as { terminal?: { event: AnyEvent; published: boolean }; steps: { name: string; status: string; startedAt?: number; endedAt?: number }[]; results: Record<string, unknown> };
    if (r.status === 'completed') {
      // Steps overlap (metadata beside recognition), yet each ran to completion once with its result,
      // and comparison never started before recognition ended, across every restart.
      const step = (n: string) => st.steps.find((x) => x.name === n)!;
      assert.ok(st.steps.every((x) => x.status === 'completed' && st.results[x.name] !== undefined), `${r.id}: every step completed with its result`);
      assert.ok(step('comparison').startedAt! >= step('recognition').endedAt!, `${r.id}: comparison started after recognition ended`);
      if (step('metadata').startedAt! < step('recognition').endedAt! && step('recognition').startedAt! < step('metadata').endedAt!) overlapping++;
    }
    assert.ok(r.status === 'completed' || r.status === 'failed', `${r.id} ended (${r.status})`);
    assert.ok(st.terminal && r.open === 0, `${r.id} terminal event written and published`);
    const seen = events.filter((e) => e.subject === r.id && (e.type === 'analysis.completed' || e.type === 'analysis.failed'));
    const ids = new Set(seen.map((e) => e.id));
    assert.ok(ids.size <= 1, `${r.id}: ${ids.size} distinct terminal events`);
    if (seen.length) assert.is(seen[0]!.id, st.terminal!.event.id, 'the observed terminal event is the persisted one');
    if (r.status === 'completed') completed++;
  }
  const observedTerminal = new Set(events.filter((e) => e.type === 'analysis.completed' || e.type === 'analysis.failed').map((e) => e.subject));
  console.log(`  crash test: ${CYCLES} kill -9 cycles, ${rows.length} analyses, ${completed} completed (${overlapping} with metadata and recognition overlapping), ${observedTerminal.size} terminal events observed live`);
  assert.ok(completed >= rows.length * 0.9, 'most analyses complete despite the crashes');
  assert.ok(overlapping >= completed / 2, `steps ran side by side (${overlapping} of ${completed})`);
});

test.run();
