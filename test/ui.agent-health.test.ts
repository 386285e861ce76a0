import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import type { Agent } from '@tu/agent';
import type { BusClient } from '@tu/shared';
import { inject, signedInUrl, startAllHandlers, startTestAgent, testConfig, until } from './support/harness.js';
import { ensureBuilt, launchChromium, screenshotPath } from './support/browser.js';
import { photo, REPO_ROOT } from './support/real.js';

/*
 * What the technician's health panel and banner say of the cloud uplink and the storage is true
 * and whole: events that will never reach the office are counted with their meaning, the oldest
 * waiting event's age is said in words, a relay that is only being connected to is not called
 * unreachable, a full outbox says what it does (uplink.outbox.whenFull), free space, the photo
 * quota and the agent version are shown. Real agents whose uplink points at a relay that refuses
 * connections or never answers; Debian Chromium.
 */
type Ctx = { silent: net.Server; held: Set<net.Socket>; connecting: Agent; refused: Agent; clients: BusClient[]; browser: Browser };
const t = suite<Ctx>('ui: the technician health panel and banner say what the uplink and the storage do (lost events, ages, connecting, whenFull)');

const WAIT = 30_000;
const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };
const PHOTO = photo('exif_gps/exifsamples_DSCN0010.jpg');
const shots = (name: string) => screenshotPath(`agent-health-${name}.png`);

t.before(async (ctx) => {
  await ensureBuilt(path.join(REPO_ROOT, 'agent/ui'));
  // A relay that accepts TCP and never answers MQTT: the uplink stays "connecting", with no error.
  ctx.held = new Set();
  ctx.silent = net.createServer((socket) => ctx.held.add(socket));
  await new Promise<void>((r) => ctx.silent.listen(0, '127.0.0.1', r));
  const silentPort = (ctx.silent.address() as net.AddressInfo).port;
  ctx.connecting = await startTestAgent({ config: testConfig({ 'uplink.url': `mqtt://127.0.0.1:${silentPort}`, 'uplink.password': 'x'.repeat(32) }) });
  // A relay port nobody listens on, and an outbox of 3 events that drops the oldest: analyses overflow it.
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as net.AddressInfo).port;
  await new Promise((r) => closed.close(r));
  ctx.refused = await startTestAgent({
    config: testConfig({
      'uplink.url': `mqtt://127.0.0.1:${closedPort}`,
      'uplink.password': 'x'.repeat(32),
      'uplink.outbox.maxEvents': 3,
      'uplink.outbox.whenFull': 'drop-oldest',
      'uplink.outbox.durability': 'normal',
      'uplink.reconnect.initialDelayMs': 200,
      'uplink.reconnect.maxDelayMs': 1000,
    }),
  });
  ctx.clients = await startAllHandlers(ctx.refused);
  for (let i = 0; i < 2; i++) {
    const res = await inject(ctx.refused, { method: 'POST', url: '/api/v1/images', headers: { 'content-type': 'image/jpeg', 'x-file-name': `p${i}.jpg` }, payload: fs.readFileSync(PHOTO) });
    assert.is(res.statusCode, 202, res.body);
  }
  await until(() => {
    const u = ctx.refused.uplink.health();
    return u.state !== 'disabled' && u.dropped > 0 && u.lastError !== null;
  }, WAIT, 'dropped events and a failed connect');
  ctx.browser = await launchChromium();
});
t.after(async (ctx) => {
  await ctx.browser?.close();
  for (const c of ctx.clients ?? []) await c.close().catch(() => undefined);
  await ctx.connecting?.stop();
  await ctx.refused?.stop();
  for (const s of ctx.held ?? []) s.destroy();
  await new Promise((r) => (ctx.silent ? ctx.silent.close(r) : r(undefined)));
});

const openUi = async (ctx: Ctx, agent: Agent, viewport: { width: number; height: number }, before?: (page: Page) => Promise<void>): Promise<Page> => {
  // en-US: the assertions below read its digit grouping ("100,000"); the UI uses whatever the browser's is.
  const page = await ctx.browser.newPage({ viewport, locale: 'en-US' });
  if (before) await before(page);
  await page.goto(await signedInUrl(agent));
  await page.getByTestId('uplink-detail').waitFor({ timeout: WAIT });
  return page;
};
/** The page's health answers with `patch` applied to the gateway's real one. */
const patchHealth = (patch: (h: { uplink: Record<string, unknown> }) => void) => async (page: Page): Promise<void> => {
  await page.route('**/api/v1/health', async (route) => {
    const res = await route.fetch();
    const h = (await res.json()) as { uplink: Record<string, unknown> };
    patch(h);
    await route.fulfill({ response: res, json: h });
  });
};

t('events that will never reach the office are counted with their meaning; the full outbox says it drops the oldest', async (ctx) => {
  // The gateway itself is not "ok" while it drops results: health says why (http/routes/health.ts).
  const api = (await inject(ctx.refused, { method: 'GET', url: '/api/v1/health' })).json<{ status: string; reasons: string[] }>();
  assert.is(api.status, 'degraded');
  assert.ok(api.reasons.some((r) => /^the uplink outbox is full .*the oldest waiting events are dropped .*\(\d+ so far\)$/.test(r)), api.reasons.join(' | '));
  const page = await openUi(ctx, ctx.refused, LAPTOP);
  const lost = page.getByTestId('uplink-lost');
  const dropped = ctx.refused.uplink.health();
  assert.ok(dropped.state !== 'disabled' && dropped.dropped > 0);
  assert.match(await lost.innerText(), /Never reaching the office: \d+ dropped \(the oldest waiting, to make room while the outbox was full\)/);
  const banner = await page.locator('.banner[role="alert"]').innerText();
  assert.match(banner, /The uplink outbox is full: the oldest waiting events are dropped to make room for new ones; they never reach the office \(\d+ dropped so far\)/, banner);
  assert.not.match(banner, /dropped or refused/, banner);
  await page.locator('#health').screenshot({ path: shots('lost-laptop') });
  await page.close();
});

t('a full outbox configured to refuse new events says so, with the refused count', async (ctx) => {
  const page = await openUi(
    ctx,
    ctx.refused,
    PHONE,
    patchHealth((h) => Object.assign(h.uplink, { whenFull: 'refuse-new', full: true, dropped: 0, refused: 4, expired: 2 })),
  );
  await page.getByTestId('uplink-lost').filter({ hasText: 'refused' }).waitFor({ timeout: WAIT });
  const banner = await page.locator('.banner[role="alert"]').innerText();
  assert.match(banner, /The uplink outbox is full: new events are refused; they never reach the office \(4 refused so far\)/, banner);
  const lost = await page.getByTestId('uplink-lost').innerText();
  assert.match(lost, /4 refused \(not taken in: the outbox was full, or the event was larger than the whole outbox\); 2 expired \(waited longer than the outbox keeps events: 7 d 0 h\)/, lost);
  await page.close();
});

t("the oldest waiting event's age is said in words and a sensible unit, not \"oldest 3600.0 s\"", async (ctx) => {
  const page = await openUi(ctx, ctx.refused, PHONE);
  const waiting = page.getByTestId('uplink-waiting');
  // The outbox's bounds as configured (uplink.outbox.maxEvents 3, maxBytes the default): what "full" means here.
  assert.match(await waiting.innerText(), /^\d+ events? waiting to be sent \(\d[\d.]* (bytes|KB)\) of at most 3 events or 256 MB; the oldest waiting for \d+ s/);
  await page.close();
  const hour = await openUi(ctx, ctx.refused, PHONE, patchHealth((h) => Object.assign(h.uplink, { oldestUndeliveredAgeMs: 3_600_000 })));
  await hour.getByTestId('uplink-waiting').filter({ hasText: '1 h' }).waitFor({ timeout: WAIT });
  const text = await hour.getByTestId('uplink-waiting').innerText();
  assert.match(text, /the oldest waiting for 1 h 0 min/, text);
  assert.not.match(text, /3600/, text);
  await hour.locator('#health').screenshot({ path: shots('uplink-phone') });
  await hour.close();
});

t('a relay that refuses connections: the banner says the gateway is not connected, for how long, and why', async (ctx) => {
  const page = await openUi(ctx, ctx.refused, LAPTOP);
  const banner = await page.locator('.banner[role="alert"]').innerText();
  assert.match(banner, /Not connected to the cloud relay for \d+ s: mqtt:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/, banner);
  assert.match(await page.getByTestId('uplink-detail').innerText(), /Relay: not connected for \d+ s, retrying/);
  await page.close();
});

t('connecting to the relay (at start-up): the banner does not call it unreachable; after the grace it says it is still connecting', async (ctx) => {
  const page = await openUi(ctx, ctx.connecting, LAPTOP);
  const u = ctx.connecting.uplink.health();
  assert.is(u.state, 'connecting', 'precondition: the silent relay keeps the uplink connecting');
  assert.match(await page.getByTestId('uplink-detail').innerText(), /Relay: connecting for \d+ s, no answer yet/);
  const banner = page.locator('.banner[role="alert"]');
  const said = (await banner.count()) ? await banner.innerText() : '';
  assert.not.match(said, /unreachable|relay/i, said);
  await page.screenshot({ path: shots('connecting-laptop') });
  await page.close();
  // Connecting for longer than a connect takes: said, as connecting, not as unreachable.
  const long = await openUi(ctx, ctx.connecting, PHONE, patchHealth((h) => Object.assign(h.uplink, { disconnectedMs: 125_000 })));
  const text = await long.locator('.banner[role="alert"]').getByText(/cloud relay/).innerText();
  assert.match(text, /Not connected to the cloud relay for 2 min: still connecting, no answer yet/, text);
  assert.not.match(text, /unreachable/, text);
  await long.close();
});

t('large counts are grouped the browser\'s way (100,000 events, 12,345 dropped), one rule for every number', async (ctx) => {
  // The default outbox bound (firmware-config uplink.outbox.maxEvents, 100000) of a gateway whose photo's events wait for the relay.
  const res = await inject(ctx.connecting, { method: 'POST', url: '/api/v1/images', headers: { 'content-type': 'image/jpeg', 'x-file-name': 'waits.jpg' }, payload: fs.readFileSync(PHOTO) });
  assert.is(res.statusCode, 202, res.body);
  await until(() => {
    const u = ctx.connecting.uplink.health();
    return u.state !== 'disabled' && u.queueDepth > 0;
  }, WAIT, 'an event waiting in the outbox');
  const page = await openUi(ctx, ctx.connecting, PHONE);
  await page.getByTestId('uplink-waiting').filter({ hasText: 'waiting to be sent' }).waitFor({ timeout: WAIT });
  const waiting = await page.getByTestId('uplink-waiting').innerText();
  assert.match(waiting, /^\d+ events? waiting to be sent \([\d.,]+ (bytes|KB)\) of at most 100,000 events or 256 MB/, waiting);
  await page.close();
  // Counts beyond a thousand in the banner and the panel (the refused agent's real answer with large counters).
  const big = await openUi(ctx, ctx.refused, PHONE, patchHealth((h) => Object.assign(h.uplink, { full: true, whenFull: 'drop-oldest', dropped: 12345, refused: 23456, expired: 1234567, queueDepth: 54321 })));
  await big.getByTestId('uplink-lost').filter({ hasText: '12,345' }).waitFor({ timeout: WAIT });
  const lost = await big.getByTestId('uplink-lost').innerText();
  assert.match(lost, /12,345 dropped .*; 23,456 refused .*; 1,234,567 expired/, lost);
  assert.match(await big.getByTestId('uplink-waiting').innerText(), /^54,321 events waiting to be sent/);
  const banner = await big.locator('.banner[role="alert"]').innerText();
  assert.match(banner, /\(54,321 events waiting\)/, banner);
  assert.match(banner, /\(12,345 dropped so far\)/, banner);
  assert.not.match(lost, /\d{4}/, 'no count of four or more digits without grouping');
  await big.close();
});

t('the health panel shows the agent version, free space and the photo quota, each with its unit and meaning', async (ctx) => {
  const page = await openUi(ctx, ctx.refused, PHONE);
  const health = page.locator('#health');
  assert.match(await health.locator('dd').first().innerText(), /gw-test · agent version \d+\.\d+\.\d+/);
  // Each count says what it counts ("up, 6 clients" and "0 running, 0 waiting" did not).
  const panel = await health.innerText();
  assert.match(panel, /Broker\nup, \d+ connections on the gateway's local message bus \(its services, orchestrator and live feed\)/, panel);
  assert.match(panel, /Queue\n\d+ (analysis|analyses) running, \d+ waiting to start/, panel);
  assert.match(panel, /\d+ requests? in progress/, panel);
  // The vision service runs outside this agent (startAllHandlers): said in words, not as 'out-of-process'.
  assert.match(await page.getByTestId('health-model').innerText(), /^loaded by the vision service in its own process \(tu-agent run --service vision\), not by this agent/);
  const storage = await page.getByTestId('storage-detail').innerText();
  assert.match(storage, /Free space: [\d.]+ (KB|MB|GB|TB) of [\d.]+ (KB|MB|GB|TB); below [\d.]+ MB new photos are refused\./, storage);
  // A few photos in 512 MB: less than one percent, not "0 %" (which says the quota is untouched).
  const used = (await inject(ctx.refused, { method: 'GET', url: '/api/v1/health' })).json<{ storage: { quota: { usedBytes: number } } }>().storage.quota.usedBytes;
  assert.ok(used > 0 && used < 0.005 * 512 * 1024 * 1024, `precondition: some bytes used, under half a percent (${used})`);
  assert.match(storage, /Photos and comparison history: [\d.]+ (bytes|KB|MB) of their 512 MB quota \((< 0\.1|0\.[1-9]) %\)\./, storage);
  await health.screenshot({ path: shots('panel-phone') });
  await page.close();
});

t.run();
