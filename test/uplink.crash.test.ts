import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { BusClient, silentLogger, type AnyEvent } from '@tu/shared';
import { derivePassword, observerUsername } from '@tu/agent';
import { uploaded } from './support/fixtures.js';
import { bearerFor, startProcessHandlers, tmpDir, until } from './support/harness.js';
import { TestRelay } from './support/relay-ingress.js';
import { freePort, startProcess, stopProcess, writeProcessAgentConfig } from './support/processes.js';
import { addGateway, startTestRelay } from './support/relay.js';
import { photoBytes } from './support/data.js';

const GW = 'gw-uplink-crash';
const BUS_SECRET = 'uplink-crash-bus-secret-uplink-crash-0001';
const GW_SECRET = 'uplink-crash-gateway-secret';
const GW_RELAY = 'gw-uplink-kill';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const startAgentProcess = (configFile: string): Promise<ChildProcess> =>
  startProcess('agent/dist/main.js', ['--config', configFile], '"agent started"', { TU_BUS_SECRET: BUS_SECRET, TU_UPLINK_PASSWORD: GW_SECRET });

const kill9 = (child: ChildProcess) => stopProcess(child, 'SIGKILL');

/** What is on disk in the outbox (read after the kill, before the restart), in seq order. */
const outboxIds = (dataDir: string): string[] => {
  const db = new Database(path.join(dataDir, 'outbox.sqlite'));
  const ids = (db.prepare('SELECT id FROM outbox ORDER BY seq').all() as { id: string }[]).map((r) => r.id);
  db.close();
  return ids;
};

test('kill -9 with a loaded outbox and the relay down; restart; relay up: every queued event delivered, in order', async () => {
  const dataDir = tmpDir('tu-uplink-crash-');
  const [busPort, httpPort, relayPort] = [await freePort(), await freePort(), await freePort()];
  const configFile = writeProcessAgentConfig(path.join(dataDir, 'agent.json'), {
    gatewayId: GW,
    dataDir,
    busPort,
    httpPort,
    extra: { orchestrator: { durability: 'full', maxConcurrent: 8 }, uplink: { url: `mqtt://127.0.0.1:${relayPort}`, reconnect: { initialDelayMs: 50, maxDelayMs: 300, jitter: 0.2 } } },
  });
  const logger = silentLogger();
  const tcp = { kind: 'tcp' as const, host: '127.0.0.1', port: busPort };
  let agent = await startAgentProcess(configFile);
  const clients = await startProcessHandlers({ gatewayId: GW, secret: BUS_SECRET, port: busPort, suffix: 'uc' });
  const local: AnyEvent[] = [];
  const obsUser = observerUsername('uplink-crash');
  const obs = await BusClient.connect({ gatewayId: GW, service: 'intake', instanceId: `${obsUser}:1`, username: obsUser, password: derivePassword(BUS_SECRET, obsUser), transport: tcp, logger });
  await obs.onEvents('all', (e) => void local.push(e));
  const intake = await BusClient.connect({ gatewayId: GW, service: 'intake', instanceId: 'intake:uc', username: 'intake', password: derivePassword(BUS_SECRET, 'intake'), transport: tcp, logger });
  clients.push(obs, intake);
  const analysisIds = new Set<string>();
  const upload = () => {
    const d = uploaded(GW);
    analysisIds.add(d.analysisId);
    void intake.publishEvent('tu.image.uploaded', d, { subject: d.analysisId }).catch(() => undefined);
    return d.analysisId;
  };
  const reconnected = () => until(() => clients.every((c) => c.connected), 10_000, 'bus clients to reconnect');

  // Life 1: 40 analyses complete while the relay is down; let the group commits land; kill -9.
  const first = Array.from({ length: 40 }, upload);
  await until(() => first.every((id) => local.some((e) => e.subject === id && e.type === 'analysis.completed')), 15_000, 'life-1 analyses');
  await sleep(150);
  await kill9(agent);
  const s1 = outboxIds(dataDir);
  const seen1 = local.map((e) => e.id);
  assert.equal(s1.filter((id) => seen1.includes(id)), seen1, 'every event seen on the bus in life 1 is on disk, in bus order');

  // Life 2: more uploads, kill -9 in the middle of the burst (events in flight, commits pending).
  agent = await startAgentProcess(configFile);
  await reconnected();
  const before2 = local.length;
  for (let i = 0; i < 30; i++) {
    upload();
    await sleep(5);
  }
  await kill9(agent);
  const s2 = outboxIds(dataDir);
  assert.ok(s1.every((id) => s2.includes(id)), 'nothing queued earlier was lost');
  const seen2 = local.slice(before2).map((e) => e.id);
  const window = seen2.filter((id) => !s2.includes(id));

  // Life 3: relay comes up; the backlog drains.
  agent = await startAgentProcess(configFile);
  const relay = new TestRelay({ [GW]: GW_SECRET });
  await relay.start(relayPort);
  try {
    await until(() => s2.every((id) => relay.received.firstSeen.includes(id)), 20_000, 'every queued event at the relay');
    // Terminal events are never lost in the window: those not on disk at a kill are re-sent after the restart.
    const terminalSeen = local.filter((e) => e.type === 'analysis.completed' || e.type === 'analysis.failed').map((e) => e.id);
    await until(() => terminalSeen.every((id) => relay.received.firstSeen.includes(id)), 20_000, 'every terminal event seen on the bus at the relay');
    const drainBy = Date.now() + 10_000;
    for (;;) {
      const h = (await (await fetch(`http://127.0.0.1:${httpPort}/api/v1/health`, { headers: await bearerFor(GW, dataDir) })).json()) as { uplink?: { queueDepth: number } };
      if (h.uplink?.queueDepth === 0) break;
      if (Date.now() > drainBy) throw new Error(`outbox did not drain: ${JSON.stringify(h.uplink)}`);
      await sleep(20);
    }
    const distinct = new Set(relay.received.firstSeen);
    assert.ok(relay.received.all.every((r) => analysisIds.has(r.subject)), 'only events of these analyses reach the relay');
    const order = relay.received.firstSeen.filter((id) => s2.includes(id));
    assert.equal(order, s2, 'queued events first arrive in outbox (bus) order');
    assert.is(relay.received.duplicates, relay.received.all.length - distinct.size, 'duplicates are only re-sends of the same id');
    assert.is(relay.received.refusedPublishes, 0);
    console.log(
      `  uplink crash: ${s2.length} events queued across 2 kill -9, ${distinct.size} distinct delivered, ${relay.received.duplicates} re-sends; ` +
        `${window.length} event(s) seen on the bus in the last ${(seen2.length && 'burst') || 'life'} but not yet committed at the kill (the documented window), ${window.filter((id) => distinct.has(id)).length} of them re-published after the restart and delivered ` +
        `(${window.filter((id) => terminalSeen.includes(id)).length} terminal, all delivered)`,
    );
  } finally {
    await stopProcess(agent);
    for (const c of clients) await c.close();
    await relay.stop();
  }
});

/** POST one photo to the agent's HTTP API; the analysis id when it answered 202 (undefined when refused or the agent was down). */
async function postImage(httpPort: number, bytes: Buffer, auth: { authorization: string }): Promise<string | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${httpPort}/api/v1/images`, { method: 'POST', body: bytes, headers: { 'content-type': 'image/jpeg', ...auth } });
    if (r.status !== 202) return undefined;
    return ((await r.json()) as { analysisId: string }).analysisId;
  } catch {
    return undefined; // killed mid-request: no 202, nothing promised
  }
}

test('kill -9 right after completions, 10 times, uploads over HTTP: every 202 ends exactly once at the relay, none stays running', async () => {
  const relay = await startTestRelay();
  const secret = await addGateway(relay, GW_RELAY, 'acme');
  const dataDir = tmpDir('tu-uplink-kill-');
  const auth = await bearerFor(GW_RELAY, dataDir);
  const [busPort, httpPort] = [await freePort(), await freePort()];
  const configFile = writeProcessAgentConfig(path.join(dataDir, 'agent.json'), {
    gatewayId: GW_RELAY,
    dataDir,
    busPort,
    httpPort,
    extra: { orchestrator: { durability: 'full', maxConcurrent: 8 }, uplink: { url: relay.mqttUrl, reconnect: { initialDelayMs: 50, maxDelayMs: 300, jitter: 0.2 } } },
  });
  const start = () => startProcess('agent/dist/main.js', ['--config', configFile], '"agent started"', { TU_BUS_SECRET: BUS_SECRET, TU_UPLINK_PASSWORD: secret });
  const logger = silentLogger();
  const tcp = { kind: 'tcp' as const, host: '127.0.0.1', port: busPort };
  let agent = await start();
  const clients: BusClient[] = [];
  const accepted = new Set<string>();
  try {
    // Step handlers in this process over TCP (no model needed); they reconnect after each kill.
    clients.push(...(await startProcessHandlers({ gatewayId: GW_RELAY, secret: BUS_SECRET, port: busPort, suffix: 'kill', before: () => sleep(Math.random() * 20) })));
    // The kill lands right after a completion: the observer sees analysis.completed and sends
    // SIGKILL in the same tick, while the orchestrator closes its record and the uplink commits.
    let completedThisLife = 0;
    let killAfter = Infinity;
    let killed: ChildProcess | undefined;
    const obsUser = observerUsername('uplink-kill');
    const obs = await BusClient.connect({ gatewayId: GW_RELAY, service: 'intake', instanceId: `${obsUser}:1`, username: obsUser, password: derivePassword(BUS_SECRET, obsUser), transport: tcp, logger });
    await obs.onEvents(['analysis.completed'], () => {
      if (++completedThisLife < killAfter || killed === agent) return;
      killed = agent;
      agent.kill('SIGKILL');
    });
    clients.push(obs);
    const bytes = photoBytes('forklift/imagenet_n03384352_forklift.jpg');
    const CYCLES = 10;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      await until(() => clients.every((c) => c.connected), 10_000, 'bus clients to reconnect');
      const life = agent;
      completedThisLife = 0;
      killAfter = 3 + Math.floor(Math.random() * 8);
      const exited = new Promise((r) => life.once('exit', r));
      // Two upload loops until the kill.
      const loops = [0, 1].map(async () => {
        while (life.exitCode === null && life.signalCode === null) {
          const id = await postImage(httpPort, bytes, auth);
          if (id) accepted.add(id);
        }
      });
      await until(() => life.exitCode !== null || life.signalCode !== null, 15_000, `cycle ${cycle}: the kill after ${killAfter} completions`);
      await exited;
      await Promise.all(loops);
      agent = await start();
    }
    killAfter = Infinity;

    // Last life: everything drains to the relay.
    const terminal = async () => (await relay.storage.listAnalyses({ tenantId: 'acme', gatewayId: GW_RELAY, first: 100_000 })).items.map((r) => ({ id: r.id, status: r.status }));
    let rows: { id: string; status: string }[] = [];
    const end = Date.now() + 30_000;
    for (;;) {
      rows = await terminal();
      const ended = new Set(rows.filter((r) => r.status !== 'running').map((r) => r.id));
      if ([...accepted].every((id) => ended.has(id))) break;
      if (Date.now() > end) break;
      await sleep(200);
    }
    const byId = new Map(rows.map((r) => [r.id, r.status]));
    const missing = [...accepted].filter((id) => !byId.has(id));
    const running = [...accepted].filter((id) => byId.get(id) === 'running');
    const events = await relay.storage.listEvents({ tenantId: 'acme', gatewayId: GW_RELAY, limit: 100_000 });
    const terminalIds = new Map<string, Set<string>>();
    for (const e of events) if (e.type === 'analysis.completed' || e.type === 'analysis.failed') terminalIds.set(e.subject, (terminalIds.get(e.subject) ?? new Set()).add(e.id));
    console.log(`  uplink kill: ${CYCLES} kill -9 right after completions, ${accepted.size} uploads answered 202; at the relay ${rows.length} analyses, ${running.length} still running, ${missing.length} missing`);
    const atAgent = async (id: string) => ((await (await fetch(`http://127.0.0.1:${httpPort}/api/v1/analyses/${id}`)).json()) as { status?: string }).status;
    const agentSide = await Promise.all(running.map(async (id) => `${id} (agent: ${await atAgent(id)})`));
    assert.is(running.length, 0, `analyses still "running" at the relay: ${agentSide.join(', ')}`);
    assert.is(missing.length, 0, `202s the relay never heard of: ${missing.join(', ')}`);
    for (const id of accepted) {
      assert.ok(['completed', 'failed'].includes(byId.get(id) ?? ''), `${id} ended at the relay (${byId.get(id)})`);
      assert.is(terminalIds.get(id)?.size, 1, `${id}: exactly one terminal event at the relay`);
    }
    assert.ok(rows.filter((r) => accepted.has(r.id) && r.status === 'completed').length >= accepted.size * 0.9, 'most analyses complete despite the kills');
  } finally {
    await stopProcess(agent);
    for (const c of clients) await c.close();
    await relay.stop();
  }
});

test.run();
