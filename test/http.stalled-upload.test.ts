/**
 * An upload that stops arriving (a phone that left the Wi-Fi without closing its connection)
 * gives back its queue place once its connection has been idle for http.idleTimeoutMs. Without
 * a timeout the places stayed taken until the sockets died, and the gateway refused every upload.
 */
import net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Agent } from '@tu/agent';
import { noisePhoto } from './support/disk.js';
import { authHeader, startTestAgent, testConfig, until } from './support/harness.js';

type Ctx = { agent: Agent; sockets: net.Socket[] };
const t = suite<Ctx>('http: a stalled upload times out and frees its place');

t.before(async (ctx) => {
  ctx.agent = await startTestAgent({ config: testConfig({ 'orchestrator.maxConcurrent': 1, 'orchestrator.maxQueue': 2, 'http.idleTimeoutMs': 2000 }) });
  ctx.sockets = [];
});
t.after(async (ctx) => {
  for (const s of ctx.sockets) s.destroy();
  await ctx.agent.stop();
});

t('three stalled uploads hold every place; once idle for 2 s they are dropped and an upload is accepted', async (ctx) => {
  const { authorization } = await authHeader(ctx.agent);
  const url = ctx.agent.http.url;
  const port = Number(new URL(url).port);
  const jpg = await noisePhoto(30);
  const closed: boolean[] = [];
  for (let i = 0; i < 3; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('close', () => (closed[i] = true));
    s.write(`POST /api/v1/images HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${authorization}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpg.length}\r\n\r\n`);
    s.write(jpg.subarray(0, 1000)); // then nothing more
    ctx.sockets.push(s);
  }
  const post = () => fetch(`${url}/api/v1/images`, { method: 'POST', body: jpg, headers: { authorization, 'content-type': 'image/jpeg' } });
  await new Promise((r) => setTimeout(r, 300));
  assert.is((await post()).status, 429, 'the stalled uploads hold every place');
  await until(() => closed.filter(Boolean).length === 3, 6000, 'the idle connections closed');
  const r = await post();
  assert.is(r.status, 202, await r.text());
});

t.run();
