/**
 * The cloud dashboard in Chromium against a real relay, fed by a real agent (real services
 * and model) whose uplink points at the relay. Photos go in through the technician UI, as a
 * technician would upload them; the dashboard must show them live, over graphql-ws.
 */
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import type { Agent } from '@tu/agent';
import type { Relay } from '@tu/relay';
import { inject, signedInUrl, tmpDir } from './support/harness.js';
import { ensureBuilt, launchChromium, screenshotPath } from './support/browser.js';
import { photo, photoBytes, REPO_ROOT, startRealAgent } from './support/real.js';
import { addGateway, analysisFlow, connectGateway, publishEvent, startTestRelay, tokenFor } from './support/relay.js';

type Ctx = { relay: Relay; agent: Agent; browser: Browser; tokenA: string; tokenB: string; secretB: string; completedId: string; failedId: string };
const t = suite<Ctx>('ui: cloud dashboard in Chromium against a real relay fed by a real agent');

const GW_A = 'gw-dash-a';
const GW_B = 'gw-dash-b';
// A class the plain backbone knows without a trained head, so the dashboard shows a real type.
const FORKLIFT = photo('forklift/imagenet_n03384352_forklift.jpg');
const WAIT = 30_000;
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

t.before(async (ctx) => {
  await Promise.all([ensureBuilt(path.join(REPO_ROOT, 'agent/ui')), ensureBuilt(path.join(REPO_ROOT, 'relay/ui'))]);
  ctx.relay = await startTestRelay();
  const secret = await addGateway(ctx.relay, GW_A, 'tenant-a');
  ctx.secretB = await addGateway(ctx.relay, GW_B, 'tenant-b');
  ctx.agent = await startRealAgent({
    gatewayId: GW_A,
    'uplink.url': ctx.relay.mqttUrl,
    'uplink.password': secret,
    'uplink.reconnect.initialDelayMs': 50,
    'uplink.reconnect.maxDelayMs': 200,
    'uplink.outbox.durability': 'normal',
  });
  // The machine this gateway is fitted to: its fields reach the relay in metadata.record.
  const put = await inject(ctx.agent, { method: 'PUT', url: '/api/v1/machine', payload: { type: 'forklift', brand: 'Linde', model: 'H25', serialNumber: 'SN-DASH-1', name: 'Yard 7 forklift' } });
  assert.ok(put.statusCode < 300, put.body);
  ctx.tokenA = await tokenFor('tenant-a', 'fleet-a');
  ctx.tokenB = await tokenFor('tenant-b', 'fleet-b');
  ctx.browser = await launchChromium();
});
t.after(async (ctx) => {
  await ctx.browser?.close();
  await ctx.agent?.stop();
  await ctx.relay?.stop();
});

const uplinkOnline = async (ctx: Ctx): Promise<void> => {
  const end = Date.now() + WAIT;
  for (;;) {
    const h = (await inject(ctx.agent, { method: 'GET', url: '/api/v1/health' })).json<{ uplink?: { state?: string } }>();
    if (h.uplink?.state === 'online') return;
    if (Date.now() > end) throw new Error(`uplink not online: ${JSON.stringify(h.uplink)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** Opens the dashboard and signs in with the token typed into its labelled field. */
const signIn = async (ctx: Ctx, token: string, viewport = LAPTOP): Promise<Page> => {
  const page = await ctx.browser.newPage({ viewport });
  await page.goto(ctx.relay.url);
  await page.getByLabel('Access token (JWT)').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  return page;
};
const waitLive = (page: Page) => page.getByRole('status').filter({ hasText: /^Live$/ }).waitFor({ timeout: WAIT });

/** Uploads a file through the technician UI; resolves with the analysis id once it ends in `end`. */
const uploadThroughTechnicianUi = async (ctx: Ctx, file: string, end: 'Completed' | 'Failed', shot?: string): Promise<string> => {
  const page = await ctx.browser.newPage({ viewport: LAPTOP });
  await page.goto(await signedInUrl(ctx.agent));
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: WAIT });
  await page.getByLabel('Choose photos').setInputFiles(file);
  const card = page.getByRole('article', { name: new RegExp(path.basename(file).replace(/\./g, '\\.')) });
  await card.getByText(end, { exact: true }).waitFor({ timeout: WAIT });
  const id = ((await card.getAttribute('id')) ?? '').replace(/^a-/, '');
  assert.ok(id, 'the card carries its analysis id');
  if (shot) await page.screenshot({ path: screenshotPath(shot) });
  await page.close();
  return id;
};

t('a bad token is refused with a clear message, and the sign-in form stays usable', async (ctx) => {
  const page = await signIn(ctx, 'not.a.validtoken');
  const alert = page.getByRole('alert');
  await alert.waitFor({ timeout: WAIT });
  assert.match(await alert.innerText(), /The relay refused this token \(invalid token: .+\)\. Sign in again with a valid token\./);
  assert.ok(await page.getByLabel('Access token (JWT)').isVisible(), 'the form is shown again');
  await page.screenshot({ path: screenshotPath('dashboard-bad-token-1280x800.png') });
  await page.close();
});

t('tenant A: a photo uploaded in the technician UI appears live; gateway online; machine table and detail', async (ctx) => {
  await uplinkOnline(ctx);
  const page = await signIn(ctx, ctx.tokenA);
  await waitLive(page);
  const gateways = page.getByRole('region', { name: 'Gateways', exact: true });
  await gateways.getByRole('listitem').filter({ hasText: GW_A }).filter({ hasText: 'online' }).waitFor({ timeout: WAIT });

  // Uploaded in another tab (the technician's phone); the dashboard is not reloaded.
  const marker = await page.evaluate<number>('window.__loadedAt = performance.timeOrigin');
  ctx.completedId = await uploadThroughTechnicianUi(ctx, FORKLIFT, 'Completed', 'agent-ui-after-upload-1280x800.png');
  const feed = page.getByRole('list', { name: 'Live analysis events' });
  const completedLine = feed.getByRole('listitem').filter({ hasText: ctx.completedId }).filter({ hasText: 'analysis.completed' });
  await completedLine.waitFor({ timeout: WAIT });
  assert.match(await completedLine.innerText(), /forklift \([\d.]+ % confidence\)/, 'recognised type and confidence');
  assert.is(await page.evaluate<number>('window.__loadedAt'), marker, 'no reload');
  const started = await feed.getByRole('listitem').filter({ hasText: ctx.completedId }).allInnerTexts();
  assert.ok(started.some((s) => /analysis\.started/.test(s)), 'started is in the feed too');

  // Machines: the gateway's machine with the registered fields and the thumbnail.
  const machines = page.getByRole('region', { name: 'Machines', exact: true });
  const row = machines.getByRole('row').filter({ hasText: 'SN-DASH-1' });
  await row.waitFor({ timeout: WAIT });
  assert.match(await row.innerText(), /forklift/);
  assert.match(await row.innerText(), /Linde H25/);
  assert.ok(await row.getByRole('img').isVisible(), 'thumbnail in the table');
  await page.screenshot({ path: screenshotPath('dashboard-laptop-1280x800.png') });
  await page.close();
});

t('tenant A: search and type filter narrow the machines table; the registered name is shown and found', async (ctx) => {
  const page = await signIn(ctx, ctx.tokenA);
  await waitLive(page);
  const machines = page.getByRole('region', { name: 'Machines', exact: true });
  const rows = machines.getByRole('row').filter({ hasText: 'SN-DASH-1' });
  await rows.waitFor({ timeout: WAIT });
  // The name the technician registered on the gateway, not the relay's `{gateway}:default`.
  assert.is(await rows.getByRole('button', { name: 'Yard 7 forklift' }).count(), 1, 'the registered name names the machine');
  assert.is(await rows.getByRole('button', { name: `${GW_A}:default` }).count(), 0);
  await page.getByLabel('Search').fill('Yard 7');
  await rows.waitFor({ timeout: WAIT });
  assert.is(await machines.getByRole('row').filter({ hasText: 'Yard 7 forklift' }).count(), 1, 'found by its name');
  await page.getByLabel('Search').fill('no-such-machine');
  await rows.waitFor({ state: 'detached', timeout: WAIT });
  await page.getByLabel('Search').fill('linde');
  await rows.waitFor({ timeout: WAIT });
  await page.getByLabel('Search').fill('');
  const type = page.getByLabel('Type');
  await type.selectOption('forklift');
  await rows.waitFor({ timeout: WAIT });
  assert.is(await type.inputValue(), 'forklift');
  await page.close();
});

t('tenant A: a truncated JPEG fails; the failure and its reason show in the feed, failures and machine detail', async (ctx) => {
  const page = await signIn(ctx, ctx.tokenA);
  await waitLive(page);
  const bad = path.join(tmpDir('tu-dash-'), 'truncated.jpg');
  const jpeg = photoBytes('exif_gps/exifsamples_DSCN0010.jpg');
  fs.writeFileSync(bad, jpeg.subarray(0, Math.floor(jpeg.length / 3)));
  ctx.failedId = await uploadThroughTechnicianUi(ctx, bad, 'Failed');
  const feed = page.getByRole('list', { name: 'Live analysis events' });
  const failedLine = feed.getByRole('listitem').filter({ hasText: ctx.failedId }).filter({ hasText: 'analysis.failed' });
  await failedLine.waitFor({ timeout: WAIT });
  assert.match(await failedLine.innerText(), /IMAGE_DECODE_FAILED/);
  await feed.getByRole('listitem').filter({ hasText: ctx.failedId }).filter({ hasText: 'recognition.failed' }).waitFor({ timeout: WAIT });
  const failures = page.getByRole('region', { name: 'Failures', exact: true });
  await failures.getByRole('listitem').filter({ hasText: ctx.failedId }).filter({ hasText: 'IMAGE_DECODE_FAILED' }).waitFor({ timeout: WAIT });

  // Machine detail: thumbnail and both analyses, the failed one with its reason.
  await page.getByRole('region', { name: 'Machines', exact: true }).getByRole('button', { name: 'Yard 7 forklift' }).click();
  const detail = page.getByRole('article', { name: /Machine/ });
  await detail.waitFor({ timeout: WAIT });
  assert.ok(await detail.getByRole('img').isVisible(), 'thumbnail in the detail');
  const history = detail.getByRole('listitem');
  await history.filter({ hasText: 'failed' }).filter({ hasText: 'IMAGE_DECODE_FAILED' }).waitFor({ timeout: WAIT });
  await history.filter({ hasText: 'completed' }).filter({ hasText: /forklift \([\d.]+ % confidence\)/ }).waitFor({ timeout: WAIT });
  await page.screenshot({ path: screenshotPath('dashboard-laptop-full.png'), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: screenshotPath('dashboard-phone-390x844.png') });
  await page.screenshot({ path: screenshotPath('dashboard-phone-full.png'), fullPage: true });
  await page.close();
});

/** The ids of the feed's lines, in order (each line carries its event id). */
const feedIds = (page: Page): Promise<string[]> =>
  page.getByRole('list', { name: 'Live analysis events' }).locator('li[data-event-id]').evaluateAll((els) => els.map((e) => e.getAttribute('data-event-id') ?? ''));

t('tenant A: after a reload the feed shows the stored events, then continues live, each event once', async (ctx) => {
  const page = await signIn(ctx, ctx.tokenA);
  await waitLive(page);
  const feed = page.getByRole('list', { name: 'Live analysis events' });
  await page.reload();
  await waitLive(page);
  // Before anything new happens: the earlier analyses are there, from storage.
  const completed = feed.getByRole('listitem').filter({ hasText: ctx.completedId }).filter({ hasText: 'analysis.completed' });
  await completed.waitFor({ timeout: WAIT });
  assert.match(await completed.innerText(), /recognised: forklift \([\d.]+ % confidence\)/);
  await feed.getByRole('listitem').filter({ hasText: ctx.failedId }).filter({ hasText: 'analysis.failed' }).waitFor({ timeout: WAIT });
  const before = await feedIds(page);
  assert.is(new Set(before).size, before.length, 'no event twice');
  // Then live, without a reload: the new analysis' events appear once each, the old ones stay once.
  // The dashboard loads the stored events again once the new analysis is stored: wait for that
  // answer too, so the check below sees the live events and the reloaded stored ones together.
  const reloaded = page.waitForResponse((r) => r.url().endsWith('/graphql') && (r.request().postData() ?? '').includes('recentEvents'), { timeout: WAIT });
  const id = await uploadThroughTechnicianUi(ctx, FORKLIFT, 'Completed');
  await feed.getByRole('listitem').filter({ hasText: id }).filter({ hasText: 'analysis.completed' }).waitFor({ timeout: WAIT });
  const answer = await reloaded;
  assert.match(await answer.text(), new RegExp(id), 'the reloaded stored events include the new analysis (shown live already)');
  // One frame for the merge to render.
  await page.evaluate('new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50)))');
  const after = await feedIds(page);
  assert.is(new Set(after).size, after.length, 'no event twice after live events and the reload of stored ones');
  for (const old of before) assert.ok(after.includes(old), `stored event ${old} still shown`);
  assert.is(await feed.getByRole('listitem').filter({ hasText: id }).filter({ hasText: 'analysis.started' }).count(), 1);
  assert.is(await feed.getByRole('listitem').filter({ hasText: id }).filter({ hasText: 'analysis.completed' }).count(), 1);
  await page.screenshot({ path: screenshotPath('dashboard-feed-after-reload-1280x800.png') });
  await page.close();
});

t('tenant A: re-registered as a wheel loader, a forklift photo is shown as evidence that disagrees; the type stays the registered one', async (ctx) => {
  const put = await inject(ctx.agent, { method: 'PUT', url: '/api/v1/machine', payload: { id: 'WL-7', type: 'wheel_loader', brand: 'Linde', model: 'H25', serialNumber: 'SN-DASH-1', name: 'Yard 7 loader' } });
  assert.ok(put.statusCode < 300, put.body);
  await uploadThroughTechnicianUi(ctx, FORKLIFT, 'Completed');
  const page = await signIn(ctx, ctx.tokenA);
  await waitLive(page);
  const machines = page.getByRole('region', { name: 'Machines', exact: true });
  const row = machines.getByRole('row').filter({ hasText: 'Yard 7 loader' });
  await row.waitFor({ timeout: WAIT });
  const cells = await row.getByRole('cell').allInnerTexts();
  const headers = await machines.getByRole('columnheader').allInnerTexts();
  const cell = (h: string) => cells[headers.indexOf(h)] ?? '';
  assert.is(cell('Registered type'), 'wheel loader', 'the registered type, not the photo');
  assert.match(cell('Last recognised photo (evidence)'), /^forklift \([\d.]+ % confidence\)/);
  assert.match(cell('Last recognised photo (evidence)'), /disagrees with the registered type \(wheel loader\)/);
  assert.match(cell('Name'), /WL-7/, 'the registered id beside the name');
  // The detail says the same, and the history keeps the recognition of each photo.
  await row.getByRole('button', { name: 'Yard 7 loader' }).click();
  const detail = page.getByRole('article', { name: 'Machine Yard 7 loader' });
  await detail.waitFor({ timeout: WAIT });
  assert.match(await detail.innerText(), /Registered type\s+wheel loader/);
  assert.match(await detail.innerText(), /Last recognised photo\s+forklift \([\d.]+ % confidence\) ⚠ disagrees with the registered type/);
  // The type filter is by registered type: filtering by wheel loader finds it.
  await page.getByLabel('Type').selectOption('wheel_loader');
  await row.waitFor({ timeout: WAIT });
  await page.screenshot({ path: screenshotPath('dashboard-type-disagrees-1280x800.png'), fullPage: true });
  await page.close();
});

t('tenant B sees none of tenant A', async (ctx) => {
  const page = await signIn(ctx, ctx.tokenB, PHONE);
  await waitLive(page);
  const gateways = page.getByRole('region', { name: 'Gateways', exact: true });
  await gateways.getByText(GW_B).first().waitFor({ timeout: WAIT });
  assert.not.match(await page.locator('body').innerText(), new RegExp(`${GW_A}|SN-DASH-1|Yard 7|${ctx.completedId}|${ctx.failedId}`));
  await page.close();
});

t('tenant B: a gateway without a registered machine: the recognition is shown as evidence, the type as not registered', async (ctx) => {
  const gw = await connectGateway(ctx.relay.mqttUrl, GW_B, ctx.secretB);
  try {
    for (const e of analysisFlow(GW_B, { registered: null, recognised: { machineType: 'excavator', confidence: 0.91 } })) assert.is(await publishEvent(gw, GW_B, e), 'ok');
  } finally {
    gw.end(true);
  }
  const page = await signIn(ctx, ctx.tokenB);
  await waitLive(page);
  const machines = page.getByRole('region', { name: 'Machines', exact: true });
  const row = machines.getByRole('row').filter({ hasText: `${GW_B}:default` });
  await row.waitFor({ timeout: WAIT });
  const cells = await row.getByRole('cell').allInnerTexts();
  const headers = await machines.getByRole('columnheader').allInnerTexts();
  assert.is(cells[headers.indexOf('Registered type')], 'not registered');
  assert.match(cells[headers.indexOf('Last recognised photo (evidence)')] ?? '', /^excavator \(91 % confidence\)\nanalysis \S+, started /);
  assert.not.match(await row.innerText(), /disagrees/);
  await page.close();
});

t('tenant B: a gateway whose clock is 5 h ahead: last seen is the relay\'s receipt time, and the dashboard says so and why (issue 8 finding 10)', async (ctx) => {
  const gw = await connectGateway(ctx.relay.mqttUrl, GW_B, ctx.secretB);
  const before = Date.now();
  try {
    for (const e of analysisFlow(GW_B, { machineId: 'FUTURE-1', registered: { id: 'FUTURE-1', name: 'Clock-ahead dozer' }, at: new Date(Date.now() + 5 * 3_600_000) })) assert.is(await publishEvent(gw, GW_B, e), 'ok');
  } finally {
    gw.end(true);
  }
  const page = await signIn(ctx, ctx.tokenB);
  await waitLive(page);
  const machines = page.getByRole('region', { name: 'Machines', exact: true });
  const row = machines.getByRole('row').filter({ hasText: 'Clock-ahead dozer' });
  await row.waitFor({ timeout: WAIT });
  const lastSeen = row.getByTestId('last-seen');
  const shown = Date.parse((await lastSeen.locator('time').getAttribute('datetime')) ?? '');
  assert.ok(shown >= before - 1000 && shown <= Date.now(), 'the time shown is when the relay received it, not 5 h ahead');
  assert.match(await lastSeen.innerText(), /received by the relay/);
  assert.match(await row.getByTestId('last-seen-note').innerText(), /after the relay received the event .*the gateway's clock is ahead/);
  await page.close();
});

t('keyboard: Tab reaches sign-in and the filters; Enter opens a machine; controls are labelled', async (ctx) => {
  const page = await ctx.browser.newPage({ viewport: LAPTOP });
  await page.goto(ctx.relay.url);
  await page.keyboard.press('Tab');
  assert.is(await page.evaluate<string>("document.activeElement?.labels?.[0]?.textContent?.trim() ?? document.activeElement?.tagName ?? ''"), 'Access token (JWT)');
  await page.keyboard.insertText(ctx.tokenA);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await waitLive(page);
  const machines = page.getByRole('region', { name: 'Machines', exact: true });
  await machines.getByRole('row').filter({ hasText: 'SN-DASH-1' }).waitFor({ timeout: WAIT });
  for (const name of ['Search', 'Type']) assert.is(await page.getByLabel(name, { exact: true }).count(), 1, name);
  assert.is(await page.getByRole('button', { name: 'Sign out' }).count(), 1);
  await machines.getByRole('button', { name: 'Yard 7 loader' }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('article', { name: /Machine/ }).waitFor({ timeout: WAIT });
  const outline = await page.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle');
  assert.is(outline, 'solid', 'focus is visible');
  await page.close();
});

t.run();
