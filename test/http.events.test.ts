import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import Fastify from 'fastify';
import websocket from '@fastify/websocket';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import type { Agent } from '@tu/agent';
import type { AnyEvent, BusClient } from '@tu/shared';
import { COMMAND_TYPES } from '@tu/shared';
import type { EventFeed } from '@tu/agent/internal/http/event-feed';
import { readOrCreateDeviceKey } from '@tu/agent';
import { eventsRoute, WS_CLOSE_SLOW_CLIENT, WS_CLOSE_TOKEN_EXPIRED } from '@tu/agent/internal/http/routes/events';
import { DEVICE_ISSUER, signTechnicianToken } from '@tu/shared/internal/technician-token';
import type { AppDeps } from '@tu/agent/internal/http/sources';
import { inject, startAllHandlers, startTestAgent, techToken, until } from './support/harness.js';
import { photoBytes } from './support/real.js';

type Frame = { type: string; subject: string; data: Record<string, unknown> };
type Ctx = { agent: Agent; handlers: BusClient[] };

const connect = (url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; frames: Frame[] }> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const frames: Frame[] = [];
    ws.on('message', (raw) => frames.push(JSON.parse(String(raw)) as Frame));
    ws.once('open', () => resolve({ ws, frames }));
    ws.once('error', reject);
  });
/** The feed's URL with a view token in `?token=` (a browser's WebSocket cannot send headers). */
const wsUrl = async (agent: Agent, token?: string) => `${agent.http.url.replace(/^http/, 'ws')}/api/v1/events?token=${token ?? (await techToken(agent, ['view']))}`;
/** The HTTP status a refused handshake answered with. */
const refusal = (url: string, headers: Record<string, string> = {}): Promise<number> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => reject(new Error(`${url} was let in`)));
    ws.on('error', () => undefined);
  });
const closed = (ws: WebSocket): Promise<{ code: number; reason: string }> =>
  new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));

const t = suite<Ctx>('http: WebSocket /api/v1/events (live events, never commands)');
t.before(async (ctx) => {
  ctx.agent = await startTestAgent();
  ctx.handlers = await startAllHandlers(ctx.agent);
});
t.after(async (ctx) => {
  for (const h of ctx.handlers) await h.close();
  await ctx.agent.stop();
});

t('an upload shows up as its events, slimmed, in order; no command ever arrives', async (ctx) => {
  const a = await connect(await wsUrl(ctx.agent));
  const b = await connect(await wsUrl(ctx.agent));
  const res = await inject(ctx.agent, { method: 'POST', url: '/api/v1/images', payload: photoBytes('forklift/imagenet_n03384352_forklift.jpg'), headers: { 'content-type': 'image/jpeg' } });
  assert.is(res.statusCode, 202, res.body);
  const { analysisId } = res.json<{ analysisId: string }>();
  const done = (f: Frame[]) => f.some((e) => e.subject === analysisId && e.type === 'analysis.completed');
  await until(() => done(a.frames) && done(b.frames), 10_000, 'analysis.completed on both sockets');
  const mine = a.frames.filter((e) => e.subject === analysisId).map((e) => e.type);
  // metadata runs beside recognition (the default plan): its place among the step events varies.
  assert.equal(mine.filter((t) => t !== 'metadata.sorted'), ['tu.image.uploaded', 'analysis.started', 'recognition.completed', 'comparison.completed', 'analysis.completed']);
  assert.ok(mine.indexOf('metadata.sorted') > 1 && mine.indexOf('metadata.sorted') < 5, mine.join(', '));
  assert.equal(b.frames.filter((e) => e.subject === analysisId).map((e) => e.type), mine);
  for (const f of a.frames) assert.not.ok((COMMAND_TYPES as readonly string[]).includes(f.type), `command ${f.type} leaked`);
  const rec = a.frames.find((e) => e.type === 'recognition.completed')!;
  assert.not.ok('embedding' in (rec.data['result'] as object), 'embedding stripped from recognition.completed');
  const end = a.frames.find((e) => e.type === 'analysis.completed' && e.subject === analysisId)!;
  const endRec = (end.data['results'] as Record<string, object> | undefined)?.['recognition'];
  assert.ok(endRec, 'the feed puts the results back into analysis.completed (the bus leaves them out)');
  assert.not.ok('embedding' in endRec);
  assert.ok((end.data['image'] as { thumbnail?: string }).thumbnail, 'terminal events keep the thumbnail');
  const started = a.frames.find((e) => e.type === 'analysis.started')!;
  assert.not.ok('thumbnail' in (started.data['image'] as object));
  // Whatever a client sends is ignored; the socket keeps working.
  a.ws.send(JSON.stringify({ type: 'analysis.recognition.request' }));
  a.ws.close();
  b.ws.close();
  await until(() => a.ws.readyState === WebSocket.CLOSED && b.ws.readyState === WebSocket.CLOSED, 2000, 'closed');
});

t('closing the client removes its listener', async (ctx) => {
  const { ws } = await connect(await wsUrl(ctx.agent));
  ws.close();
  await closed(ws);
  // the HTTP app keeps serving
  const h = await inject(ctx.agent, { method: 'GET', url: '/api/v1/health' });
  assert.is(h.statusCode, 200);
});

t('the feed refuses a handshake without a token or with one for another gateway (401), and from a page of another site (403)', async (ctx) => {
  const base = ctx.agent.http.url.replace(/^http/, 'ws') + '/api/v1/events';
  assert.is(await refusal(base), 401, 'no token');
  const other = await techToken({ config: { ...ctx.agent.config, gatewayId: 'gw-other' } }, ['view']);
  assert.is(await refusal(`${base}?token=${other}`), 401, 'token for another gateway');
  assert.is(await refusal(await wsUrl(ctx.agent), { origin: 'https://evil.example' }), 403, 'cross-site page with a valid token');
  // The agent's own page (same host) is let in.
  const own = await connect(await wsUrl(ctx.agent), { origin: ctx.agent.http.url });
  own.ws.close();
});

t('a feed opened right after the last one closed receives events: its bus subscription is not lost to the previous one\'s unsubscription', async (ctx) => {
  const token = await techToken(ctx.agent, ['view']);
  const photos = ['crane/css_4.jpg', 'crane/desimichael_crane-full.jpg', 'forklift/imagenet_n03384352_forklift.jpg'];
  const silent: number[] = [];
  for (let i = 0; i < photos.length; i++) {
    // The UI reloaded, or a phone reconnecting: the last listener leaves, a new one comes at once.
    const before = await connect(await wsUrl(ctx.agent, token));
    before.ws.close();
    const after = await connect(await wsUrl(ctx.agent, token));
    const res = await inject(ctx.agent, { method: 'POST', url: '/api/v1/images', payload: photoBytes(photos[i]!), headers: { 'content-type': 'image/jpeg' } });
    assert.is(res.statusCode, 202, res.body);
    const { analysisId } = res.json<{ analysisId: string }>();
    const got = await until(() => after.frames.some((e) => e.subject === analysisId), 3000).then(() => true, () => false);
    if (!got) silent.push(i);
    after.ws.close();
    await closed(after.ws);
  }
  assert.equal(silent, [], 'feeds that stayed silent while the gateway analysed a photo');
});

t('the feed is closed (4401) when the token that opened it expires; a longer-lived token stays connected', async (ctx) => {
  // A token signed 58 s ago for 60 s: valid at the handshake, expired two seconds later.
  const now = Math.floor(Date.now() / 1000);
  const key = readOrCreateDeviceKey(ctx.agent.config.dataDir);
  const expiring = await signTechnicianToken(key, { issuer: DEVICE_ISSUER, gatewayId: ctx.agent.config.gatewayId, sub: 'leaving', roles: ['view'], ttlS: 60, now: now - 58 });
  const short = await connect(await wsUrl(ctx.agent, expiring));
  const long = await connect(await wsUrl(ctx.agent));
  const end = await Promise.race([closed(short.ws), new Promise<{ code: number; reason: string }>((r) => setTimeout(() => r({ code: 0, reason: 'still open 5 s after its token expired' }), 5000))]);
  assert.is(end.code, WS_CLOSE_TOKEN_EXPIRED.code, `closed with ${end.code} ${end.reason}`);
  assert.match(end.reason, 'expired');
  assert.ok(Date.now() >= (now + 2) * 1000, 'not before the expiry');
  assert.is(long.ws.readyState, WebSocket.OPEN, 'a valid token keeps its feed');
  // Connecting again with the expired token is refused at the handshake.
  assert.is(await refusal(await wsUrl(ctx.agent, expiring)), 401);
  long.ws.close();
  await closed(long.ws);
});

t.run();

// ---------------------------------------------------------------------------
const slow = suite('http: /api/v1/events drops a client that does not read');

slow('a paused client is closed with 4008 once its send buffer is over the limit; listener removed', async () => {
  const listeners = new Set<(e: AnyEvent) => void>();
  const feed: EventFeed = {
    subscribe: (l) => (listeners.add(l), () => listeners.delete(l)),
    get listeners() {
      return listeners.size;
    },
    stop: async () => listeners.clear(),
  };
  const app = Fastify();
  await app.register(websocket);
  // What access control (auth/access.ts) leaves on a request it let in: a viewer, valid for an hour.
  app.decorateRequest('technician', null);
  app.addHook('onRequest', async (req) => {
    req.technician = { sub: 'slow', roles: ['view'], issuer: DEVICE_ISSUER, exp: Math.floor(Date.now() / 1000) + 3600 };
  });
  eventsRoute(app, { events: feed, eventsMaxBufferedBytes: 64 * 1024 } as unknown as AppDeps);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/events`);
  await new Promise((r) => ws.once('open', r));
  (ws as unknown as { _socket: Socket })._socket.pause();
  await until(() => listeners.size === 1, 2000, 'listener');
  const big: AnyEvent = {
    specversion: '1.0', id: 'x', source: '/gateways/gw/intake', type: 'tu.image.uploaded', time: new Date().toISOString(), subject: 'abcdefgh', datacontenttype: 'application/json',
    data: { analysisId: 'abcdefgh', gatewayId: 'gw', image: { sha256: 'a'.repeat(64), contentType: 'image/jpeg', bytes: 1 }, uploadedAt: new Date().toISOString(), via: 'api', pad: 'x'.repeat(200_000) },
  } as unknown as AnyEvent;
  const close = closed(ws);
  for (let i = 0; i < 2000 && listeners.size > 0; i++) {
    for (const l of [...listeners]) l(big);
    await new Promise((r) => setImmediate(r));
  }
  assert.is(listeners.size, 0, 'listener removed');
  (ws as unknown as { _socket: Socket })._socket.resume();
  const c = await close;
  assert.is(c.code, WS_CLOSE_SLOW_CLIENT);
  await app.close();
});

slow.run();
