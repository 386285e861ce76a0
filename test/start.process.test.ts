import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { tmpDir, until } from './support/harness.js';
import { MODEL_DIR, REPO_ROOT } from './support/data.js';
import { portOpen } from './support/processes.js';

/**
 * `npm start` as a process manager runs it (the exact package.json script, without its
 * prestart build: `npm run build` ran before the tests), then the relay CLI on the data
 * that start generated. Ports are the OS's choice (0) and the data directory is a fresh
 * temporary one, so nothing clashes with a developer's running `npm start`.
 */
type Ctx = { cwd: string; npm?: ChildProcess; out: string; urls: { agent: string; agentMqtt: number; relay: string; ingress: number } };
const t = suite<Ctx>('npm start: stops on SIGTERM (both servers, quietly); the relay CLI finds its configuration');

const RELAY_CLI = path.join(REPO_ROOT, 'relay/dist/main.js');
// The developer's TU_* settings must not steer the child processes.
const cleanEnv = (): Record<string, string> => Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => !e[0].startsWith('TU_') && e[1] !== undefined));

const closed = async (port: number): Promise<boolean> => !(await portOpen(port));

const cli = (args: string[], opts: { cwd: string; env?: Record<string, string> }) =>
  spawnSync(process.execPath, [RELAY_CLI, ...args], { cwd: opts.cwd, env: { ...cleanEnv(), ...opts.env }, encoding: 'utf8', timeout: 30_000 });

t.before(async (ctx) => {
  ctx.cwd = tmpDir('tu-start-');
  ctx.out = '';
  // --data <cwd>/.data: the layout of a checkout's default, so the CLI run in <cwd> uses its defaults.
  const npm = spawn('npm', ['start', '--ignore-scripts', '--', '--data', path.join(ctx.cwd, '.data')], {
    cwd: REPO_ROOT,
    env: { ...cleanEnv(), MODEL_DIR, TU_HTTP_PORT: '0', TU_MQTT_PORT: '0', TU_RELAY_HTTP_PORT: '0', TU_RELAY_MQTT_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: after() can clean up whatever a failed test leaves, and nothing else.
    detached: true,
  });
  ctx.npm = npm;
  npm.stdout!.on('data', (d: Buffer) => void (ctx.out += d.toString()));
  npm.stderr!.on('data', (d: Buffer) => void (ctx.out += d.toString()));
  await until(() => /dashboard token/.test(ctx.out) || npm.exitCode !== null, 90_000, 'npm start printing its URLs');
  const m = /agent \(gateway [^)]+\):\s+(http:\/\/\S+)\s+MQTT mqtt:\/\/[\d.]+:(\d+)[\s\S]*relay \(cloud\):\s+(http:\/\/\S+)[\s\S]*gateway ingress mqtt:\/\/[\d.]+:(\d+)/.exec(ctx.out);
  if (!m) throw new Error(`npm start did not start:\n${ctx.out.slice(-3000)}`);
  ctx.urls = { agent: m[1]!, agentMqtt: Number(m[2]), relay: m[3]!, ingress: Number(m[4]) };
});

t.after((ctx) => {
  // Whatever is left in the group (the servers, when stopping failed) goes; nothing else is touched.
  try {
    if (ctx.npm?.pid) process.kill(-ctx.npm.pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is empty, as it should be.
  }
});

t('both servers answer health', async (ctx) => {
  assert.is((await fetch(`${ctx.urls.agent}/api/v1/health`)).status, 200);
  assert.is((await fetch(`${ctx.urls.relay}/api/v1/health`)).status, 200);
});

t('npm start prints `technician token: <t>`: the agent accepts it as a Bearer token, and nothing works without it', async (ctx) => {
  const m = /^technician token: (\S+)$/m.exec(ctx.out);
  assert.ok(m, `a technician token line in:\n${ctx.out.slice(-2000)}`);
  assert.match(ctx.out, `technician UI: ${ctx.urls.agent}/#token=${m![1]}`);
  assert.is((await fetch(`${ctx.urls.agent}/api/v1/analyses`)).status, 401);
  const res = await fetch(`${ctx.urls.agent}/api/v1/analyses`, { headers: { authorization: `Bearer ${m![1]}` } });
  assert.is(res.status, 200, await res.text());
});

t('the relay CLI in the same place works on the data npm start generated, with no secret passed', async (ctx) => {
  const list = cli(['gateways', 'list'], { cwd: ctx.cwd });
  assert.is(list.status, 0, list.stderr);
  assert.match(list.stdout, /^gw-dev\tdev\t/m);
  // A token it issues is one the running relay accepts: the same jwt.secret.
  const token = cli(['tokens', 'issue', '--tenant', 'dev'], { cwd: ctx.cwd });
  assert.is(token.status, 0, token.stderr);
  const res = await fetch(`${ctx.urls.relay}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token.stdout.trim()}` },
    body: JSON.stringify({ query: '{ gateways { nodes { id } } }' }),
  });
  assert.is(res.status, 200);
  assert.match(await res.text(), /gw-dev/);
  // Pointed at the data directory explicitly, from anywhere.
  const elsewhere = cli(['gateways', 'list'], { cwd: tmpDir('tu-cli-'), env: { TU_RELAY_DATA_DIR: path.join(ctx.cwd, '.data', 'relay') } });
  assert.is(elsewhere.status, 0, elsewhere.stderr);
  assert.match(elsewhere.stdout, /^gw-dev\t/m);
});

t('the relay CLI without that data says exactly what to pass', () => {
  const where = tmpDir('tu-cli-');
  const r = cli(['gateways', 'list'], { cwd: where });
  assert.is(r.status, 2);
  assert.match(r.stderr, /CONFIG_INVALID/);
  assert.match(r.stderr, /TU_RELAY_JWT_SECRET/);
  assert.match(r.stderr, /TU_RELAY_DATA_DIR=DIR\/relay/);
  assert.ok(r.stderr.includes(path.join(fs.realpathSync(where), '.data', 'relay', 'jwt-secret')) || r.stderr.includes(path.join(where, '.data', 'relay', 'jwt-secret')), r.stderr);
});

t('SIGTERM to the npm process stops both servers within seconds, exit code 0, no warnings', async (ctx) => {
  const npm = ctx.npm!;
  const from = ctx.out.length;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => npm.once('exit', (code, signal) => resolve({ code, signal })));
  const t0 = Date.now();
  npm.kill('SIGTERM');
  const { code, signal } = await exited;
  const ms = Date.now() - t0;
  assert.ok(ms < 10_000, `npm exited after ${ms} ms`);
  assert.equal({ code, signal }, { code: 0, signal: null }, ctx.out.slice(from));
  // npm exits when its child did: nothing may still hold a port.
  const { port: agentPort } = new URL(ctx.urls.agent);
  const { port: relayPort } = new URL(ctx.urls.relay);
  for (const port of [Number(agentPort), ctx.urls.agentMqtt, Number(relayPort), ctx.urls.ingress]) assert.ok(await closed(port), `port ${port} still open`);
  const stopLog = ctx.out.slice(from);
  assert.match(stopLog, /"msg":"stopped"/);
  const loud = stopLog.split('\n').filter((l) => /"level":(4|5|6)0/.test(l));
  assert.equal(loud, [], 'no warnings or errors while stopping');
});

t.run();
