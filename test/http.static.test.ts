import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { installErrorHandling } from '@tu/shared';
import { uiRoute } from '@tu/agent/internal/http/routes/ui';
import { dashboard } from '@tu/relay/internal/dashboard';
import { AGENT_UI_DIST, ensureBuilt, launchChromium } from './support/browser.js';
import { tmpDir } from './support/harness.js';
import { REPO_ROOT } from './support/real.js';

/**
 * The built front ends (agent technician UI, relay dashboard) are served by @fastify/static
 * through shared/src/http-ui.ts, with the shared error handler: the same rules for both.
 */
const t = suite('http: built UI files of the agent and the relay (path traversal, dotfiles, UI_NOT_BUILT)');

const SERVERS: [string, (app: FastifyInstance, dir: string) => Promise<void>][] = [
  ['agent', (app, dir) => uiRoute(app, { uiDir: dir })],
  ['relay', async (app, dir) => void (await app.register(dashboard, { dir }))],
];

const appFor = async (serve: (app: FastifyInstance, dir: string) => Promise<void>, dir: string): Promise<FastifyInstance> => {
  const app = Fastify();
  installErrorHandling(app);
  await serve(app, dir);
  return app;
};

/** A built UI beside a secret file: the secret must never be reachable. */
function builtUi(): string {
  const parent = tmpDir('tu-static-');
  fs.writeFileSync(path.join(parent, 'secret.txt'), 'outside the UI root');
  const dir = path.join(parent, 'dist');
  fs.mkdirSync(path.join(dir, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>ui</title>');
  fs.writeFileSync(path.join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
  fs.writeFileSync(path.join(dir, 'assets', '.env'), 'SECRET=1');
  fs.writeFileSync(path.join(dir, 'vite.config.json'), '{}');
  return dir;
}

for (const [name, serve] of SERVERS) {
  t(`${name}: 503 UI_NOT_BUILT with how to build it while the build is missing`, async () => {
    const dir = tmpDir('tu-no-ui-');
    const app = await appFor(serve, dir);
    for (const url of ['/', '/index.html', '/assets/index-abc123.js']) {
      const res = await app.inject({ url });
      assert.is(res.statusCode, 503, url);
      const body = res.json<{ error: { code: string; message: string } }>();
      assert.is(body.error.code, 'UI_NOT_BUILT');
      assert.match(body.error.message, /npm run build:ui/);
      assert.ok(body.error.message.includes(dir), 'says where it looked');
    }
    // A build that appears later is served without a restart.
    fs.mkdirSync(path.join(dir, 'assets'));
    fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>late</title>');
    const late = await app.inject({ url: '/' });
    assert.is(late.statusCode, 200);
    assert.match(late.body, /late/);
    await app.close();
  });

  t(`${name}: index.html revalidated, hashed assets cached, nothing else reachable`, async () => {
    const app = await appFor(serve, builtUi());
    const index = await app.inject({ url: '/' });
    assert.is(index.statusCode, 200);
    assert.match(String(index.headers['content-type']), /^text\/html/);
    assert.is(index.headers['cache-control'], 'no-cache');
    assert.is((await app.inject({ url: '/index.html' })).statusCode, 200);
    const js = await app.inject({ url: '/assets/index-abc123.js' });
    assert.is(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    assert.is(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.is(js.headers['x-content-type-options'], 'nosniff');
    for (const url of [
      '/..%2fsecret.txt',
      '/..%2f..%2fpackage.json',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/assets/..%5c..%5csecret.txt',
      '/assets/.env',
      '/assets/',
      '/vite.config.json',
      '/assets/missing.js',
    ]) {
      const res = await app.inject({ url });
      assert.not.match(res.body, /outside the UI root|SECRET=1/, url);
      assert.equal([res.statusCode, res.json<{ error: { code: string } }>().error.code], [404, 'NOT_FOUND'], url);
    }
    await app.close();
  });

  t(`${name}: every file carries frame-ancestors 'none' and script-src 'self'; a page of another site cannot frame the real UI`, async () => {
    const app = await appFor(serve, builtUi());
    for (const url of ['/', '/index.html', '/assets/index-abc123.js']) {
      const res = await app.inject({ url });
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, "frame-ancestors 'none'", url);
      assert.match(csp, "script-src 'self'", url);
      assert.is(res.headers['x-frame-options'], 'DENY', url);
    }
    await app.close();
    // The real built UI, served on 127.0.0.1 and framed by a page of 127.0.0.2 in Chromium.
    const dir = name === 'agent' ? AGENT_UI_DIST : path.join(REPO_ROOT, 'relay/ui/dist');
    await ensureBuilt(path.dirname(dir));
    const ui = await appFor(serve, dir);
    await ui.listen({ port: 0, host: '127.0.0.1' });
    const target = `http://127.0.0.1:${(ui.server.address() as AddressInfo).port}/`;
    const evil = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><p>win a prize</p><iframe src="${target}"></iframe>`));
    await new Promise<void>((r) => evil.listen(0, '127.0.0.2', r));
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const own = await page.goto(target);
      assert.is(own?.status(), 200, 'the UI itself opens');
      assert.match(await page.title(), 'TU Edge Analysis', 'the UI itself opens');
      await page.goto(`http://127.0.0.2:${(evil.address() as AddressInfo).port}/`);
      await page.waitForTimeout(500);
      const frame = page.frames().find((f) => f !== page.mainFrame());
      assert.ok(frame, 'the frame element is there');
      const title = await frame.title().catch(() => '');
      assert.not.match(title, 'TU Edge Analysis', `the ${name} UI must not render inside another site's frame (${frame.url()})`);
    } finally {
      await browser.close();
      evil.closeAllConnections();
      await new Promise((r) => evil.close(r));
      await ui.close();
    }
  });
}

t.run();
