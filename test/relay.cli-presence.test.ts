/**
 * `gateways list` (the operator CLI, run as a process with the relay's own config) tells the
 * presence GraphQL tells: a gateway whose relay instance died without a clean stop (kill -9)
 * still has `online` in its stored row, and both must say offline once the instance's liveness
 * key lapses (relay/src/ingest/redis-state.ts). With Redis configured but not answering, the CLI
 * says the presence is unknown rather than print the stored row as the truth.
 * Our own redis-server (test/support/redis.ts, stopped by the last test); storage is a
 * PostgreSQL schema of this test, shared by the relays and the CLI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { MqttClient } from 'mqtt';
import type { Relay } from '@tu/relay';
import { REPO_ROOT } from './support/data.js';
import { tmpDir } from './support/harness.js';
import { freePort, startProcess, stopProcess } from './support/processes.js';
import { startRedis } from './support/redis.js';
import { addGateway, connectGateway, dropPgSchema, gql, JWT_SECRET, PG_BASE, pgSchemaName, startTestRelay, tokenFor } from './support/relay.js';

const MAIN = path.join(REPO_ROOT, 'relay/dist/main.js');
const TENANT = 'cli-presence';
const PREFIX = 'clip:';
const LIVENESS_MS = 1000;

type Ctx = { redis: Awaited<ReturnType<typeof startRedis>>; schema: string; configFile: string; mqttPort: number; b: Relay; c?: ChildProcess; clients: MqttClient[] };
const test = suite<Ctx>('relay: gateways list tells the presence GraphQL tells (shared presence in Redis)');

test.before(async (ctx) => {
  ctx.redis = await startRedis();
  ctx.schema = pgSchemaName();
  ctx.clients = [];
  ctx.mqttPort = await freePort();
  const dir = tmpDir('tu-relay-cli-presence-');
  // One config for relay C (a process) and the CLI: the operator runs it against the relay's config.
  const config = {
    dataDir: dir,
    log: { level: 'silent' },
    http: { host: '127.0.0.1', port: 0 },
    ingress: { host: '127.0.0.1', port: ctx.mqttPort },
    storage: { url: `${PG_BASE}?schema=${ctx.schema}` },
    redis: { url: ctx.redis.url, keyPrefix: PREFIX, livenessMs: LIVENESS_MS },
    jwt: { secret: JWT_SECRET },
  };
  ctx.configFile = path.join(dir, 'relay.json');
  fs.writeFileSync(ctx.configFile, JSON.stringify(config));
  ctx.b = await startTestRelay({ overrides: { 'storage.url': config.storage.url, 'redis.url': ctx.redis.url, 'redis.keyPrefix': PREFIX, 'redis.livenessMs': LIVENESS_MS } });
});
test.after(async (ctx) => {
  for (const c of ctx.clients) c.end(true);
  if (ctx.c) await stopProcess(ctx.c, 'SIGKILL');
  await ctx.b?.stop();
  await ctx.redis?.stop();
  await dropPgSchema(ctx.schema);
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The CLI as a process (not spawnSync: relay B in this process keeps answering meanwhile). */
function cli(ctx: Ctx, args: string[]): Promise<Run> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [MAIN, '--config', ctx.configFile, ...args], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout: stdout.trim(), stderr, ms: Date.now() - t0 });
    }),
  );
}

/** Gateway id → presence, sorted by id (a plain object: uvu shows the difference of two). */
type Shown = Record<string, string>;
const sorted = (pairs: Iterable<readonly [string, string]>): Shown => Object.fromEntries([...pairs].sort(([a], [b]) => a.localeCompare(b)));

/** `gateways list --tenant`: the online column by gateway id. */
async function listed(ctx: Ctx): Promise<{ run: Run; online: Shown }> {
  const run = await cli(ctx, ['gateways', 'list', '--tenant', TENANT]);
  assert.is(run.status, 0, `gateways list: ${run.stderr}`);
  const online = sorted(run.stdout.split('\n').filter(Boolean).map((l) => l.split('\t')).map((f) => [f[0]!, f[3]!] as const));
  return { run, online };
}

/** What the dashboard sees, through relay B. */
async function graphqlOnline(ctx: Ctx): Promise<Shown> {
  const r = await gql<{ gateways: { nodes: { id: string; online: boolean }[] } }>(ctx.b, await tokenFor(TENANT), '{ gateways(first: 50) { nodes { id online } } }');
  assert.ok(r.data?.gateways, JSON.stringify(r));
  return sorted(r.data.gateways.nodes.map((g) => [g.id, g.online ? 'online' : 'offline'] as const));
}

async function eventually(pred: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('after kill -9 of the relay holding a gateway, gateways list says offline as GraphQL does (the stored row still says online)', async (ctx) => {
  const onC = 'gw-clip-on-c';
  const onB = 'gw-clip-on-b';
  const never = 'gw-clip-never';
  const secretC = await addGateway(ctx.b, onC, TENANT);
  const secretB = await addGateway(ctx.b, onB, TENANT);
  await addGateway(ctx.b, never, TENANT);
  ctx.c = await startProcess('relay/dist/main.js', ['--config', ctx.configFile], 'relay: ');
  const gwC = await connectGateway(`mqtt://127.0.0.1:${ctx.mqttPort}`, onC, secretC);
  gwC.on('error', () => undefined);
  ctx.clients.push(gwC, await connectGateway(ctx.b.mqttUrl, onB, secretB));
  const want: Shown = sorted([
    [onC, 'online'],
    [onB, 'online'],
    [never, 'offline'],
  ]);
  await eventually(async () => JSON.stringify(await graphqlOnline(ctx)) === JSON.stringify(want), 5000, 'both online through GraphQL');
  // The stored row of C's gateway is written through C's storage queue: wait for it, as a relay that ran a while has it.
  await eventually(async () => (await ctx.b.storage.getGateway(onC))?.online === true, 5000, 'online in the stored row');
  assert.equal((await listed(ctx)).online, want, 'gateways list while C runs');

  // No clean stop: C never writes its gateway's "offline", to Redis or to storage.
  await stopProcess(ctx.c, 'SIGKILL');
  want[onC] = 'offline';
  await eventually(async () => (await graphqlOnline(ctx))[onC] === 'offline', 5 * LIVENESS_MS, 'offline through GraphQL once C is gone');
  assert.is((await ctx.b.storage.getGateway(onC))?.online, true, 'the scenario: the stored row still says online');
  assert.equal(await graphqlOnline(ctx), want, 'GraphQL');
  assert.equal((await listed(ctx)).online, want, 'gateways list tells what GraphQL tells');
});

test('Redis configured but not answering: gateways list says the presence is unknown (and why), never a stored "online"; Redis back, it tells what GraphQL tells again', async (ctx) => {
  const port = ctx.redis.port;
  await ctx.redis.stop();
  try {
    const { run, online } = await listed(ctx);
    assert.equal(online, { 'gw-clip-never': 'unknown', 'gw-clip-on-b': 'unknown', 'gw-clip-on-c': 'unknown' });
    assert.match(run.stderr, /^presence unknown: Redis \(redis\.url\) did not answer \(.*ECONNREFUSED/m);
    assert.ok(run.ms < 10_000, `the CLI did not wait for Redis (${run.ms} ms)`);
    // The registry part of the listing stands: id, tenant, name, last seen, active.
    assert.match(run.stdout, /^gw-clip-never\tcli-presence\tGateway gw-clip-never\tunknown\t-\tactive$/m);
  } finally {
    // Back on its port, empty (no persistence); also, relay B stops only with Redis there
    // (RedisState.close waits for a QUIT that a client reconnecting to a stopped Redis never sends).
    ctx.redis = await startRedis(port);
  }
  let last = '';
  await eventually(
    async () => {
      const { run, online } = await listed(ctx);
      const shown = await graphqlOnline(ctx);
      last = `CLI ${JSON.stringify(online)}, GraphQL ${JSON.stringify(shown)}`;
      return run.stderr === '' && JSON.stringify(online) === JSON.stringify(shown);
    },
    15_000,
    'gateways list and GraphQL agreeing again',
  ).catch((err: Error) => assert.unreachable(`${err.message}: ${last}`));
});

test.run();
