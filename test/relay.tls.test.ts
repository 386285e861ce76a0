/**
 * TLS end to end (issue 11): a relay with http.tls and ingress.tls, certificates made here with
 * openssl (a CA, a server certificate for 127.0.0.1 and localhost, and an unrelated second CA).
 * A real agent's uplink forwards over mqtts with the CA it is given; a gateway trusting the other
 * CA refuses the relay; GraphQL over https, graphql-ws over wss, MQTT over wss at /mqtt and the
 * dashboard over https work with the CA.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { ClientRequestArgs } from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { gatewayStatusPayload, gatewayTopics, topics, type AnyEvent } from '@tu/shared';
import { ConfigError, loadRelayConfig, startRelay, type Relay } from '@tu/relay';
import { openRelayConnection, resolveEndpoint } from '@tu/agent/internal/uplink/relay-connection';
import type { Agent } from '@tu/agent';
import { uploaded } from './support/fixtures.js';
import { intake, observer, startAllHandlers, startTestAgent, testConfig, tmpDir, until } from './support/harness.js';
import { addGateway, analysisFlow, relayTestConfig, tokenFor, type Received } from './support/relay.js';

interface Pki {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  otherCa: string;
  otherKey: string;
}

/** A CA, a server certificate it signs (SAN 127.0.0.1 and localhost), and an unrelated CA. */
function makePki(): Pki {
  const dir = tmpDir('tu-relay-tls-');
  const f = (n: string) => path.join(dir, n);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=TU test CA');
  openssl('req', '-x509', ...ec, '-keyout', f('other-ca.key'), '-out', f('other-ca.pem'), '-days', '2', '-subj', '/CN=TU unrelated CA');
  openssl('req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost');
  fs.writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('server.ext'));
  return { dir, ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key'), otherCa: f('other-ca.pem'), otherKey: f('other-ca.key') };
}

/** An HTTPS request trusting only `ca` (what a browser with the CA installed does). */
function request(url: string, ca: Buffer, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {}, ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

type Ctx = { pki: Pki; relay: Relay; tenant: string };
const test = suite<Ctx>('relay: TLS end to end (https, wss, mqtts)');

test.before(async (ctx) => {
  ctx.pki = makePki();
  const files = { cert: ctx.pki.cert, key: ctx.pki.key };
  ctx.relay = await startRelay(relayTestConfig({ 'http.tls': files, 'ingress.tls': files }));
  ctx.tenant = `tls-${process.pid}`;
  await ctx.relay.registry.addTenant(ctx.tenant);
});
test.after(async (ctx) => {
  await ctx.relay?.stop();
});

test('the relay serves https, wss and mqtts', (ctx) => {
  assert.match(ctx.relay.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.match(ctx.relay.mqttUrl, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
  assert.match(ctx.relay.mqttWsUrl ?? '', /^wss:\/\/127\.0\.0\.1:\d+\/mqtt$/);
});

test('a real agent forwards over mqtts with the configured CA; GraphQL over https and a graphql-ws subscription over wss receive the events', async (ctx) => {
  const gw = 'gw-tls';
  const secret = await addGateway(ctx.relay, gw, ctx.tenant);
  const token = await tokenFor(ctx.tenant);
  const ca = fs.readFileSync(ctx.pki.ca);
  // The dashboard's client (relay/ui/src/graphql.ts) over wss, trusting the test CA.
  const live: Received[] = [];
  const subErrors: unknown[] = [];
  class CaWebSocket extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[]) {
      super(address, protocols, { ca } satisfies ClientRequestArgs & { ca: Buffer });
    }
  }
  const total = ctx.relay.deps.subscriptions.total;
  const client = createClient({ url: `${ctx.relay.url.replace('https', 'wss')}/graphql`, webSocketImpl: CaWebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0, lazy: false });
  client.subscribe<{ analysisEvents: Received }>(
    { query: 'subscription ($gw: ID) { analysisEvents(gatewayId: $gw) { id type analysisId gatewayId time data } }', variables: { gw } },
    { next: (v) => (v.data ? live.push(v.data.analysisEvents) : subErrors.push(v.errors)), error: (e) => subErrors.push(e), complete: () => undefined },
  );
  await until(() => ctx.relay.deps.subscriptions.total > total || subErrors.length > 0, 5000, 'subscription over wss');
  assert.equal(subErrors, []);

  let agent: Agent | undefined;
  try {
    agent = await startTestAgent({
      config: testConfig({ gatewayId: gw, 'uplink.url': ctx.relay.mqttUrl, 'uplink.password': secret, 'uplink.tls.ca': ctx.pki.ca, 'uplink.reconnect.initialDelayMs': 20, 'uplink.reconnect.maxDelayMs': 200 }),
    });
    const handlers = await startAllHandlers(agent);
    const local = await observer(agent, 'tls');
    const bus = await intake(agent);
    const d = uploaded(gw);
    await bus.publishEvent('tu.image.uploaded', d, { subject: d.analysisId });
    await local.waitFor((es: AnyEvent[]) => es.some((e) => e.subject === d.analysisId && e.type === 'analysis.completed'), 10_000);
    const forwarded = local.events.filter((e) => e.subject === d.analysisId).map((e) => e.id);
    // Stored: the agent's outbox is acknowledged only once the relay has stored each event.
    const stored = async () => await ctx.relay.storage.listEvents({ tenantId: ctx.tenant, gatewayId: gw, limit: 100 });
    for (const end = Date.now() + 10_000; (await stored()).length < forwarded.length && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    assert.equal((await stored()).map((e) => e.id).sort(), [...forwarded].sort());
    assert.ok((await stored()).some((e) => e.type === 'analysis.completed'));
    await until(() => live.some((e) => e.analysisId === d.analysisId && e.type === 'analysis.completed'), 5000, 'the completed analysis over wss');
    assert.ok(live.every((e) => e.gatewayId === gw));

    // GraphQL query over https.
    const res = await request(`${ctx.relay.url}/graphql`, ca, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: `{ analysis(id: "${d.analysisId}") { id status } gateways { nodes { id online } } }` }),
    });
    assert.is(res.status, 200, res.body);
    const data = (JSON.parse(res.body) as { data: { analysis: { id: string; status: string }; gateways: { nodes: { id: string; online: boolean }[] } } }).data;
    assert.equal(data.analysis, { id: d.analysisId, status: 'completed' });
    assert.equal(data.gateways.nodes.find((n) => n.id === gw)?.online, true);
    await bus.close();
    await local.bus.close();
    for (const h of handlers) await h.close();
  } finally {
    await agent?.stop();
    await client.dispose();
  }
});

test('a gateway trusting another CA refuses the relay: the error names the certificate problem and nothing is stored', async (ctx) => {
  const gw = 'gw-tls-wrong-ca';
  const secret = await addGateway(ctx.relay, gw, ctx.tenant);
  const connections = ctx.relay.deps.ingress()?.clients ?? 0;
  // The uplink's own connection code, as the forwarder uses it (agent/src/uplink/forwarder.ts).
  const endpoint = (ca: string) => resolveEndpoint({ url: ctx.relay.mqttUrl, gatewayId: gw, password: secret, tls: { ca, rejectUnauthorized: true }, keepaliveS: 30, connectTimeoutMs: 5000 });
  const attempt = (ca: string) =>
    new Promise<{ connected: boolean; error?: Error & { code?: unknown } }>((resolve) => {
      const c = openRelayConnection(endpoint(ca), { will: { topic: gatewayTopics.status(gw), payload: Buffer.from(gatewayStatusPayload(false)), qos: 1, retain: true } });
      c.once('connect', () => {
        c.publish(topics.event(gw, 'analysis.started'), JSON.stringify(analysisFlow(gw)[0]), { qos: 1 }, () => {
          c.end(true);
          resolve({ connected: true });
        });
      });
      c.once('error', (error) => {
        c.end(true);
        resolve({ connected: false, error });
      });
    });
  const wrong = await attempt(ctx.pki.otherCa);
  assert.is(wrong.connected, false);
  assert.match(wrong.error?.message ?? '', /certificate/i, `the error names the certificate problem: ${wrong.error?.message}`);
  assert.is(wrong.error?.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  assert.is(ctx.relay.deps.ingress()?.clients, connections, 'no MQTT session was opened');
  assert.is(ctx.relay.deps.presence.online(gw), false);
  assert.equal(await ctx.relay.storage.listEvents({ tenantId: ctx.tenant, gatewayId: gw, limit: 10 }), []);

  // The same gateway with the right CA gets in and its event is stored: the CA made the difference.
  const right = await attempt(ctx.pki.ca);
  assert.is(right.connected, true, right.error?.message);
  assert.is((await ctx.relay.storage.listEvents({ tenantId: ctx.tenant, gatewayId: gw, limit: 10 })).length, 1);
});

test('MQTT over wss at /mqtt and the dashboard over https, with the CA', async (ctx) => {
  const gw = 'gw-tls-ws';
  const secret = await addGateway(ctx.relay, gw, ctx.tenant);
  const c = openRelayConnection(resolveEndpoint({ url: ctx.relay.mqttWsUrl!, gatewayId: gw, password: secret, tls: { ca: ctx.pki.ca, rejectUnauthorized: true }, keepaliveS: 30, connectTimeoutMs: 5000 }), {});
  try {
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
    });
    const e = analysisFlow(gw)[0]!;
    await c.publishAsync(topics.event(gw, e.type), JSON.stringify(e), { qos: 1 });
    assert.equal((await ctx.relay.storage.listEvents({ tenantId: ctx.tenant, gatewayId: gw, limit: 10 })).map((r) => r.id), [e.id], 'stored before the PUBACK');
  } finally {
    await c.endAsync();
  }
  const page = await request(`${ctx.relay.url}/`, fs.readFileSync(ctx.pki.ca));
  assert.is(page.status, 200);
  assert.match(page.body, /<html/i);
  // Without the CA, the client refuses the relay's certificate.
  await request(`${ctx.relay.url}/`, fs.readFileSync(ctx.pki.otherCa)).then(
    () => assert.unreachable('trusted a certificate from another CA'),
    (err: Error & { code?: string }) => assert.is(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
  );
  // The relay lets go of the refused connection (it closes a moment after the client's alert).
  const open = () => new Promise<number>((resolve, reject) => ctx.relay.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  for (const end = Date.now() + 5000; (await open()) > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
  assert.is(await open(), 0, 'the refused connection is closed');
});

test('TLS settings: env overrides, and a ConfigError naming the field and the file when unreadable, not PEM or not the key of the certificate', async (ctx) => {
  const c = loadRelayConfig({ env: { TU_RELAY_JWT_SECRET: 'x'.repeat(32), TU_RELAY_HTTP_TLS_CERT: '/c.pem', TU_RELAY_HTTP_TLS_KEY: '/k.pem', TU_RELAY_MQTT_TLS_CERT: '/c2.pem', TU_RELAY_MQTT_TLS_KEY: '/k2.pem' } });
  assert.equal(c.http.tls, { cert: '/c.pem', key: '/k.pem' });
  assert.equal(c.ingress.tls, { cert: '/c2.pem', key: '/k2.pem' });
  try {
    loadRelayConfig({ env: {}, overrides: { 'jwt.secret': 'x'.repeat(32), 'http.tls': { cert: '/c.pem' } } });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.ok((err as ConfigError).problems.some((p) => p.field === 'http.tls.key'), (err as Error).message);
  }

  const notPem = path.join(ctx.pki.dir, 'not.pem');
  fs.writeFileSync(notPem, 'hello\n');
  const cases: [Record<string, unknown>, string, string][] = [
    [{ 'http.tls': { cert: path.join(ctx.pki.dir, 'missing.pem'), key: ctx.pki.key } }, 'http.tls.cert', 'missing.pem'],
    [{ 'http.tls': { cert: notPem, key: ctx.pki.key } }, 'http.tls.cert', 'not.pem'],
    [{ 'ingress.tls': { cert: ctx.pki.cert, key: notPem } }, 'ingress.tls.key', 'not.pem'],
    [{ 'ingress.tls': { cert: ctx.pki.cert, key: ctx.pki.otherKey } }, 'ingress.tls.key', 'other-ca.key'],
  ];
  for (const [overrides, field, file] of cases) {
    try {
      const r = await startRelay(relayTestConfig(overrides));
      await r.stop();
      assert.unreachable(`${field} accepted`);
    } catch (err) {
      assert.instance(err, ConfigError, (err as Error).message);
      const problem = (err as ConfigError).problems[0]!;
      assert.is(problem.field, field);
      assert.ok(problem.message.includes(file), problem.message);
    }
  }
});

test.run();
