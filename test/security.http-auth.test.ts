/**
 * The agent's HTTP API lets in only technicians (project issue 8, finding 6): the attacks of
 * the finding, replayed. Without a token nothing is read, uploaded or registered; a token
 * acts only within its roles, its gateway and its lifetime; a page of another site changes
 * nothing; a token the relay signed is verified with no network; `tu-agent token` prints
 * one the agent accepts.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SignJWT } from 'jose';
import Fastify, { type InjectOptions } from 'fastify';
import { readOrCreateDeviceKey, type Agent } from '@tu/agent';
import { installAccessControl, ROUTE_ACCESS } from '@tu/agent/internal/http/auth/access';
import { technicianPublicKeyPem, technicianToken } from '@tu/relay/internal/cli/technicians';
import { ROLES, type Role } from '@tu/shared/internal/technician-roles';
import { DEVICE_ISSUER, signTechnicianToken } from '@tu/shared/internal/technician-token';
import { REPO_ROOT } from './support/data.js';
import { startAllHandlers, startHandler, startTestAgent, techToken, testConfig, tmpDir } from './support/harness.js';
import { photoBytes } from './support/real.js';

type Ctx = { agent: Agent; relayDir: string };
const t = suite<Ctx>('security: technician tokens, roles and Origin guard the agent API');
const PHOTO = () => photoBytes('forklift/imagenet_n03384352_forklift.jpg');

t.before(async (ctx) => {
  // The relay's technician key, provisioned on this gateway as a file would be (auth.relayPublicKey).
  ctx.relayDir = tmpDir('tu-relay-keys-');
  ctx.agent = await startTestAgent({ config: testConfig({ 'auth.relayPublicKey': technicianPublicKeyPem(ctx.relayDir) }) });
});
t.after(async (ctx) => ctx.agent.stop());

const call = (ctx: Ctx, opts: InjectOptions, token?: string) =>
  ctx.agent.http.app.inject({ ...opts, headers: { ...(opts.headers ?? {}), ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) } });
const code = (res: { json: () => unknown }) => (res.json() as { error?: { code: string } }).error?.code;

/** One request per guarded route of the table, with a body it would accept. */
function requestFor(route: string): InjectOptions {
  const [method, url] = route.split(' ') as [InjectOptions['method'], string];
  const u = url.replace(':id', 'abcdefgh1234');
  if (route === 'POST /api/v1/images' || route === 'POST /api/v1/machine/references') return { method, url: u, payload: PHOTO(), headers: { 'content-type': 'image/jpeg' } };
  if (route === 'PUT /api/v1/machine') return { method, url: u, payload: { type: 'excavator', name: 'hijacked' } };
  if (route === 'POST /api/v1/analyses/:id/label') return { method, url: u, payload: { label: 'crane', by: 'mallory' } };
  return { method, url: u };
}

t('no token: every guarded route answers 401 TOKEN_REQUIRED and nothing is stored or registered', async (ctx) => {
  const before = ctx.agent.intake.stats.accepted;
  const guarded = Object.entries(ROUTE_ACCESS).filter(([, a]) => a !== 'public' && a !== 'local-or-view');
  assert.ok(guarded.length >= 10, 'the table names the routes');
  for (const [route] of guarded) {
    if (route === 'GET /api/v1/events') continue; // a WebSocket: http.events.test.ts
    const res = await call(ctx, requestFor(route));
    assert.is(res.statusCode, 401, `${route}: ${res.body}`);
    assert.is(code(res), 'TOKEN_REQUIRED', route);
    assert.match((res.json() as { error: { message: string } }).error.message, 'tu-agent token');
  }
  assert.is(ctx.agent.intake.stats.accepted, before, 'no photo accepted');
  assert.is(ctx.agent.device.machine(), undefined, 'the machine was not re-registered');
});

t('a role allows its routes (and view), nothing else: 403 ROLE_REQUIRED names the missing role', async (ctx) => {
  const tokens = Object.fromEntries(await Promise.all(ROLES.map(async (r) => [r, await techToken(ctx.agent, [r])] as const))) as Record<Role, string>;
  for (const [route, access] of Object.entries(ROUTE_ACCESS)) {
    if (access === 'public' || access === 'local-or-view' || route === 'GET /api/v1/events') continue;
    for (const role of ROLES) {
      const allowed = role === access || access === 'view';
      const res = await call(ctx, requestFor(route), tokens[role]);
      if (allowed) assert.not.ok(res.statusCode === 401 || res.statusCode === 403, `${role} may ${route}: ${res.statusCode} ${res.body}`);
      else {
        assert.is(res.statusCode, 403, `${role} may not ${route}: ${res.body}`);
        assert.is(code(res), 'ROLE_REQUIRED');
        assert.match((res.json() as { error: { message: string } }).error.message, `"${access}" role`);
      }
    }
  }
});

t('expired, another gateway, a foreign key, tampered, no exp, too long, wrong algorithm or scheme: 401 TOKEN_INVALID', async (ctx) => {
  const key = readOrCreateDeviceKey(ctx.agent.config.dataDir);
  const gw = ctx.agent.config.gatewayId;
  const now = Math.floor(Date.now() / 1000);
  const base = { issuer: DEVICE_ISSUER, gatewayId: gw, sub: 'mallory', roles: ROLES } as const;
  const good = await signTechnicianToken(key, { ...base, ttlS: 600 });
  const [h, p, s] = good.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  const bad: Record<string, string> = {
    expired: await signTechnicianToken(key, { ...base, ttlS: 600, now: now - 3600 }),
    'another gateway': await signTechnicianToken(key, { ...base, gatewayId: 'gw-other', ttlS: 600 }),
    'a foreign key': await signTechnicianToken(generateKeyPairSync('ed25519').privateKey, { ...base, ttlS: 600 }),
    tampered: `${h}.${Buffer.from(JSON.stringify({ ...payload, aud: 'gw-other', sub: 'admin' })).toString('base64url')}.${s}`,
    'no exp': await new SignJWT({ roles: ['view'] }).setProtectedHeader({ alg: 'EdDSA' }).setIssuer(DEVICE_ISSUER).setAudience(gw).setSubject('m').setIssuedAt().sign(key),
    'valid for a year': await signTechnicianToken(key, { ...base, ttlS: 365 * 86_400 }),
    HS256: await new SignJWT({ roles: ['view'] }).setProtectedHeader({ alg: 'HS256' }).setIssuer(DEVICE_ISSUER).setAudience(gw).setSubject('m').setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode('guessed-secret-guessed-secret-32')),
    'alg none': `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`,
    'unknown issuer': await signTechnicianToken(key, { ...base, issuer: 'evil' as typeof DEVICE_ISSUER, ttlS: 600 }),
    'no roles': await new SignJWT({ roles: [] }).setProtectedHeader({ alg: 'EdDSA' }).setIssuer(DEVICE_ISSUER).setAudience(gw).setSubject('m').setIssuedAt().setExpirationTime('1h').sign(key),
    garbage: 'not-a-token',
  };
  for (const [what, token] of Object.entries(bad)) {
    const res = await call(ctx, { method: 'GET', url: '/api/v1/analyses' }, token);
    assert.is(res.statusCode, 401, `${what}: ${res.body}`);
    assert.is(code(res), 'TOKEN_INVALID', what);
  }
  const basic = await ctx.agent.http.app.inject({ method: 'GET', url: '/api/v1/analyses', headers: { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` } });
  assert.is(basic.statusCode, 401);
  assert.match((await call(ctx, { method: 'GET', url: '/api/v1/analyses' }, bad.expired)).body, 'expired');
  assert.match((await call(ctx, { method: 'GET', url: '/api/v1/analyses' }, bad['another gateway'])).body, 'another gateway');
  assert.is((await call(ctx, { method: 'GET', url: '/api/v1/analyses' }, good)).statusCode, 200, 'the untouched token works');
});

t('a page of another site cannot upload or register, even with a token; the agent\'s own page can', async (ctx) => {
  const token = await techToken(ctx.agent);
  const host = new URL(ctx.agent.http.url).host;
  for (const origin of ['https://evil.example', 'null', `http://${host}.evil.example`]) {
    const up = await call(ctx, { method: 'POST', url: '/api/v1/images', payload: PHOTO(), headers: { 'content-type': 'image/jpeg', origin, host } }, token);
    assert.is(up.statusCode, 403, `${origin}: ${up.body}`);
    assert.is(code(up), 'CROSS_ORIGIN_REFUSED');
    const noToken = await call(ctx, { method: 'PUT', url: '/api/v1/machine', payload: { type: 'crane' }, headers: { origin, host } });
    assert.is(noToken.statusCode, 403, 'refused before the token is even looked at');
  }
  await startHandler(ctx.agent, 'recognition');
  const own = await call(ctx, { method: 'POST', url: '/api/v1/images', payload: PHOTO(), headers: { 'content-type': 'image/jpeg', origin: `http://${host}`, host } }, token);
  assert.is(own.statusCode, 202, own.body);
});

t('a token the relay signed (technicians token) is accepted with no network; for another gateway it is not', async (ctx) => {
  const gw = ctx.agent.config.gatewayId;
  const alice = await technicianToken(ctx.relayDir, { gateway: gw, role: 'upload', name: 'alice', ttl: '8h' }, async () => true);
  const res = await call(ctx, { method: 'POST', url: '/api/v1/images', payload: PHOTO(), headers: { 'content-type': 'image/jpeg' } }, alice);
  assert.is(res.statusCode, 202, res.body);
  assert.is((await call(ctx, { method: 'PUT', url: '/api/v1/machine', payload: { type: 'crane' } }, alice)).statusCode, 403, 'upload is not register');
  const elsewhere = await technicianToken(ctx.relayDir, { gateway: 'gw-other', role: 'view', name: 'alice', ttl: '8h' }, async () => true);
  assert.is((await call(ctx, { method: 'GET', url: '/api/v1/analyses' }, elsewhere)).statusCode, 401);
  // A gateway without the relay key provisioned trusts only its own device key.
  const plain = await startTestAgent();
  try {
    const r = await plain.http.app.inject({ method: 'GET', url: '/api/v1/analyses', headers: { authorization: `Bearer ${await technicianToken(ctx.relayDir, { gateway: plain.config.gatewayId, role: 'view', name: 'alice', ttl: '1h' }, async () => true)}` } });
    assert.is(r.statusCode, 401);
    assert.match(r.body, 'no relay key provisioned');
  } finally {
    await plain.stop();
  }
});

t('the relay signs only short-lived tokens for registered gateways and known roles', async (ctx) => {
  const known = async (id: string) => id === 'gw-test';
  const refused = async (r: Parameters<typeof technicianToken>[1]) => technicianToken(ctx.relayDir, r, known).then(() => 'signed', (e: Error) => e.message);
  assert.match(await refused({ gateway: 'gw-test', role: 'view', name: 'a', ttl: '30d' }), 'short-lived');
  assert.match(await refused({ gateway: 'gw-test', role: 'admin', name: 'a', ttl: '1h' }), 'unknown role admin');
  assert.match(await refused({ gateway: 'gw-nope', role: 'view', name: 'a', ttl: '1h' }), 'no gateway gw-nope');
  assert.is(await refused({ gateway: 'gw-test', role: 'view,teach', name: 'a', ttl: '1h' }), 'signed');
});

t('health is open but tells a stranger only ok/degraded, gateway and version; a viewer gets the details', async (ctx) => {
  const open = (await call(ctx, { method: 'GET', url: '/api/v1/health' })).json() as Record<string, unknown>;
  assert.equal(Object.keys(open).sort(), ['agent', 'detail', 'gatewayId', 'status', 'uptimeS']);
  // "to see why" only when there is a why: an ok gateway's answer asked a question nobody had.
  assert.is(open.status, 'degraded', 'no step handlers yet');
  assert.match(String(open.detail), 'to see why');
  const handlers = await startAllHandlers(ctx.agent);
  try {
    const deadline = Date.now() + 10_000;
    let now = open;
    while (now.status !== 'ok' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      now = (await call(ctx, { method: 'GET', url: '/api/v1/health' })).json() as Record<string, unknown>;
    }
    assert.is(now.status, 'ok');
    assert.not.match(String(now.detail), 'why', String(now.detail));
  } finally {
    for (const h of handlers) await h.close();
  }
  const full = (await call(ctx, { method: 'GET', url: '/api/v1/health' }, await techToken(ctx.agent, ['view']))).json() as Record<string, unknown>;
  for (const k of ['reasons', 'broker', 'services', 'model', 'uplink']) assert.ok(k in full, k);
  // A bad token on the open route is not an error: the public answer.
  assert.equal(Object.keys((await call(ctx, { method: 'GET', url: '/api/v1/health' }, 'garbage')).json() as object).sort(), Object.keys(open).sort());
  const basic = await ctx.agent.http.app.inject({ method: 'GET', url: '/api/v1/health', headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } });
  assert.is(basic.statusCode, 200, basic.body);
});

t('/metrics: open on the gateway itself (loopback), a token with view from anywhere else', async (ctx) => {
  assert.is((await ctx.agent.http.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200, 'loopback');
  const remote = await ctx.agent.http.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '10.1.2.3' });
  assert.is(remote.statusCode, 401);
  const viewer = await ctx.agent.http.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '10.1.2.3', headers: { authorization: `Bearer ${await techToken(ctx.agent, ['view'])}` } });
  assert.is(viewer.statusCode, 200);
});

t('`tu-agent token` (only TU_GATEWAY_ID and TU_DATA_DIR set) prints a token the agent accepts, within its roles', async (ctx) => {
  const run = (...args: string[]) =>
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'agent/dist/main.js'), 'token', ...args], { env: { PATH: process.env.PATH ?? '', TU_GATEWAY_ID: ctx.agent.config.gatewayId, TU_DATA_DIR: ctx.agent.config.dataDir }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  const all = run();
  assert.match(all, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'one token on stdout');
  assert.is((await call(ctx, { method: 'PUT', url: '/api/v1/machine', payload: { type: 'excavator', name: 'installer check' } }, all)).statusCode, 200);
  const viewer = run('--role', 'view', '--name', 'bob', '--ttl', '30m');
  assert.is((await call(ctx, { method: 'GET', url: '/api/v1/analyses' }, viewer)).statusCode, 200);
  assert.is((await call(ctx, { method: 'POST', url: '/api/v1/images', payload: PHOTO(), headers: { 'content-type': 'image/jpeg' } }, viewer)).statusCode, 403);
  let refused = '';
  try {
    run('--role', 'root');
  } catch (err) {
    refused = String((err as { stderr?: string }).stderr);
  }
  assert.match(refused, 'unknown role root');
});

t('random Authorization values never crash the agent: each is a 401', async (ctx) => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 200; i++) {
    const len = Math.floor(rand() * 300);
    const v = Array.from({ length: len }, () => String.fromCharCode(32 + Math.floor(rand() * 95))).join('');
    const value = i % 3 === 0 ? `Bearer ${v.replace(/\s/g, '')}.${v.length}.x` : `Bearer ${v}`;
    const res = await ctx.agent.http.app.inject({ method: 'GET', url: '/api/v1/labels', headers: { authorization: value } });
    assert.is(res.statusCode, 401, `${value.slice(0, 80)}: ${res.statusCode} ${res.body}`);
  }
  assert.is((await call(ctx, { method: 'GET', url: '/api/v1/labels' }, await techToken(ctx.agent, ['view']))).statusCode, 200);
});

t('an /api route missing from the table of roles stops the app from building (no route is open by oversight)', async () => {
  const app = Fastify();
  installAccessControl(app, { verify: async () => Promise.reject(new Error('unused')) });
  let refused = '';
  try {
    app.get('/api/v1/forgotten', async () => 'secret');
    await app.ready();
  } catch (err) {
    refused = (err as Error).message;
  }
  assert.match(refused, 'GET /api/v1/forgotten is missing from ROUTE_ACCESS');
  await app.close();
});

t.run();
