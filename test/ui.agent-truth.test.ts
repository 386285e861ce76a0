import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import type { Agent } from '@tu/agent';
import { StepError, type BusClient } from '@tu/shared';
import { defaultResults, inject, signedInUrl, startHandler, startTestAgent, techToken, testConfig, until } from './support/harness.js';
import { ensureBuilt, launchChromium, screenshotPath } from './support/browser.js';
import { photo, REPO_ROOT } from './support/real.js';

/*
 * What the technician UI shows must be true: an error is not "waiting", an optional step's
 * failure is said, each step keeps its own time, a step the failure stopped is not dropped,
 * a time from another day has its date, stale health is marked stale, a refused token says why.
 * A real agent with test step handlers (no model: these are about what the UI says of the
 * events and the API, not about recognition) and Debian Chromium.
 */
type Ctx = { agent: Agent; browser: Browser; clients: BusClient[]; release: (() => void)[] };
const t = suite<Ctx>('ui: what the technician UI shows is true (errors, optional steps, step times, dates, stale health, token reasons)');

const WAIT = 30_000;
const PHOTO = photo('exif_gps/exifsamples_DSCN0010.jpg');
const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };
const UNREADABLE = 'the nameplate is unreadable: photograph it straight on, in focus';

/** What the test handlers do (switched between tests). */
const mode = { recognition: 'slow' as 'slow' | 'hang', metadata: 'ok' as 'ok' | 'fail' };

t.before(async (ctx) => {
  await ensureBuilt(path.join(REPO_ROOT, 'agent/ui'));
  ctx.clients = [];
  ctx.release = [];
  // Nameplate optional: its service is off at first (the banner), then fails every photo.
  ctx.agent = await startTestAgent({ config: testConfig({ 'orchestrator.plan': { nameplate: { optional: true, timeoutMs: 5000, retry: { maxAttempts: 1 } } } }) });
  const agent = ctx.agent;
  ctx.clients.push(
    await startHandler(agent, 'recognition', async () => {
      // Slow enough that the metadata step ends well before the analysis does.
      if (mode.recognition === 'slow') await new Promise((r) => setTimeout(r, 400));
      else await new Promise<void>((r) => ctx.release.push(r));
      return defaultResults.recognition();
    }),
    await startHandler(agent, 'comparison'),
    await startHandler(agent, 'metadata', async () => {
      if (mode.metadata === 'fail') throw new StepError('IMAGE_DECODE_FAILED', 'the photo cannot be decoded for its metadata', false);
      return defaultResults.metadata();
    }),
  );
  await until(() => agent.orchestrator.instances().length === 3, 10_000, 'three step handlers');
  ctx.browser = await launchChromium();
});
t.after(async (ctx) => {
  for (const r of ctx.release ?? []) r();
  await ctx.browser?.close();
  for (const c of ctx.clients ?? []) await c.close().catch(() => undefined);
  await ctx.agent?.stop();
});

const openUi = async (ctx: Ctx, viewport: { width: number; height: number }, before?: (page: Page) => Promise<void>): Promise<Page> => {
  const page = await ctx.browser.newPage({ viewport });
  if (before) await before(page);
  await page.goto(await signedInUrl(ctx.agent));
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: WAIT });
  return page;
};

const shots = (name: string) => screenshotPath(`agent-truth-${name}.png`);

interface View {
  analysisId: string;
  status: string;
  endedAt?: string;
  steps: { step: string; status: string; startedAt?: string; endedAt?: string }[];
}
async function viewOf(ctx: Ctx, id: string): Promise<View> {
  return (await inject(ctx.agent, { method: 'GET', url: `/api/v1/analyses/${id}` })).json<View>();
}

/** The nameplate step's service: started once, failing every photo (so the optional step fails fast). */
async function startNameplate(ctx: Ctx): Promise<void> {
  if (ctx.agent.orchestrator.instances().length >= 4) return;
  ctx.clients.push(
    await startHandler(ctx.agent, 'nameplate', async () => {
      throw new StepError('IMAGE_DECODE_FAILED', UNREADABLE, false);
    }),
  );
  await until(() => ctx.agent.orchestrator.instances().length === 4, 10_000, 'the nameplate handler');
}

/** An analysis polled through the API until it has ended. */
async function ended(ctx: Ctx, id: string): Promise<View | undefined> {
  let view: View | undefined;
  const end = Date.now() + WAIT;
  while (Date.now() < end && view?.status !== 'failed' && view?.status !== 'completed') {
    await new Promise((r) => setTimeout(r, 100));
    view = await viewOf(ctx, id).catch(() => undefined);
  }
  return view;
}

/**
 * The completed analysis of PHOTO (its optional nameplate step failed): the one the live test
 * uploaded through the page, or one uploaded here, so each test stands on its own.
 */
let completedId = '';
async function completed(ctx: Ctx): Promise<string> {
  if (completedId) return completedId;
  await startNameplate(ctx);
  const res = await inject(ctx.agent, { method: 'POST', url: '/api/v1/images', headers: { 'content-type': 'image/jpeg', 'x-file-name': path.basename(PHOTO) }, payload: fs.readFileSync(PHOTO) });
  assert.is(res.statusCode, 202, res.body);
  const id = res.json<{ analysisId: string }>().analysisId;
  assert.is((await ended(ctx, id))?.status, 'completed');
  return (completedId = id);
}

t('an optional step whose service is down: the banner says analyses still complete, not that they fail', async (ctx) => {
  const page = await openUi(ctx, LAPTOP);
  const banner = page.locator('.banner[role="alert"]');
  const line = banner.getByText(/nameplate-service/);
  await line.waitFor({ timeout: WAIT });
  const text = await line.innerText();
  assert.match(text, /optional step\) is not running: analyses skip that step after waiting for it and still complete/, text);
  assert.not.match(text, /will fail/, text);
  await page.close();
});

t('degraded health lists the gateway\'s own reasons in the health panel, not "DEGRADED" alone', async (ctx) => {
  const page = await openUi(ctx, PHONE);
  const reasons = page.getByTestId('health-reasons');
  await reasons.waitFor({ timeout: WAIT });
  const text = await reasons.innerText();
  assert.match(text, /nameplate-service not running: analyses complete without the optional nameplate step/, text);
  assert.match(await page.getByTestId('health-status').innerText(), /degraded/i);
  await page.screenshot({ path: shots('health-reasons-phone'), fullPage: true });
  await page.close();
});

t('live: an optional step that failed is stated on the card, not only "Completed"', async (ctx) => {
  await startNameplate(ctx);
  const page = await openUi(ctx, LAPTOP);
  await page.getByLabel('Choose photos').setInputFiles(PHOTO);
  const card = page.getByRole('article', { name: /exifsamples_DSCN0010\.jpg/ });
  await card.getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  const timeline = (await card.getByRole('list', { name: 'Timeline' }).innerText()).split('\n');
  const line = timeline.find((l) => l.includes('Nameplate (optional) failed'));
  assert.ok(line, timeline.join('\n'));
  assert.ok(line.includes(`${UNREADABLE} [IMAGE_DECODE_FAILED]; the analysis completed without it`), line);
  completedId = (await card.getAttribute('id'))?.slice(2) ?? '';
  // 1366×768: the revealed card is below the sticky header, whatever height it wrapped to.
  await page.waitForTimeout(300);
  const header = await page.locator('header.top').boundingBox();
  const top = await card.boundingBox();
  assert.ok(header && top && top.y >= header.y + header.height - 1, `card top ${top?.y} below the header (${header?.y}+${header?.height})`);
  await page.screenshot({ path: shots('optional-failed-laptop') });
  await page.close();
});

t('reopened from history: each step is stamped with its own end, not the analysis end', async (ctx) => {
  const id = await completed(ctx);
  const view = await viewOf(ctx, id);
  const metadata = view.steps.find((s) => s.step === 'metadata');
  assert.ok(metadata?.endedAt && view.endedAt && metadata.endedAt !== view.endedAt, JSON.stringify(view));
  const page = await openUi(ctx, LAPTOP);
  await page.locator('#history').getByRole('button', { name: /Open analysis of exifsamples_DSCN0010\.jpg/ }).filter({ hasText: id.slice(0, 10) }).click();
  const card = page.locator(`#a-${id}`);
  await card.getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  const stamp = await card.getByRole('listitem').filter({ hasText: 'Metadata done' }).locator('time').getAttribute('datetime');
  assert.is(stamp, metadata.endedAt);
  const recognition = view.steps.find((s) => s.step === 'recognition');
  assert.is(await card.getByRole('listitem').filter({ hasText: 'Recognition done' }).locator('time').getAttribute('datetime'), recognition?.endedAt);
  // The optional step's failure is said after a reload too.
  assert.match(await card.getByRole('list', { name: 'Timeline' }).innerText(), /Nameplate \(optional\) failed[^\n]*; the analysis completed without it/);
  await page.close();
});

t('reopened failed analysis: a step the failure left running is listed as cancelled, one not started as skipped, each with its meaning; the type is "not determined", not "not recognised"', async (ctx) => {
  mode.recognition = 'hang';
  mode.metadata = 'fail';
  const res = await inject(ctx.agent, {
    method: 'POST',
    url: '/api/v1/images',
    headers: { 'content-type': 'image/jpeg', 'x-file-name': 'stopped-by-metadata.jpg' },
    payload: fs.readFileSync(PHOTO),
  });
  assert.is(res.statusCode, 202, res.body);
  const id = res.json<{ analysisId: string }>().analysisId;
  const view = await ended(ctx, id);
  assert.is(view?.status, 'failed', JSON.stringify(view));
  assert.equal(view?.steps.filter((s) => s.step !== 'nameplate').map((s) => [s.step, s.status]), [['recognition', 'cancelled'], ['comparison', 'skipped'], ['metadata', 'failed']], 'recognition was still running, comparison waited for it');
  mode.recognition = 'slow';
  mode.metadata = 'ok';
  const page = await openUi(ctx, PHONE);
  await page.locator('#history').getByRole('button', { name: /Open analysis of stopped-by-metadata\.jpg/ }).click();
  const card = page.locator(`#a-${id}`);
  await card.getByText('Failed', { exact: true }).waitFor({ timeout: WAIT });
  const timeline = await card.getByRole('list', { name: 'Timeline' }).innerText();
  assert.match(timeline, /Recognition: cancelled \(it had started, but the analysis ended before it finished; an answer arriving later is ignored\)/, timeline);
  assert.match(timeline, /Comparison: skipped \(it never started: the analysis ended before it could\)/, timeline);
  assert.not.match(timeline, /running|pending|waiting/i, timeline);
  assert.match(timeline, /Failed at Metadata: the photo cannot be decoded for its metadata \[IMAGE_DECODE_FAILED\]/, timeline);
  const type = await card.getByTestId('machine-type').innerText();
  assert.is(type, 'not determined (recognition was cancelled before it finished)');
  await card.scrollIntoViewIfNeeded();
  await page.screenshot({ path: shots('stopped-phone') });
  await page.close();
});

t('opening from history when the gateway answers an error: the error stays on the card with a Retry, named by its file', async (ctx) => {
  const id = await completed(ctx);
  const page = await openUi(ctx, LAPTOP);
  const url = `**/api/v1/analyses/${id}`;
  await page.route(url, (route) =>
    route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'INTERNAL', message: 'The state store is not readable.' } }) }),
  );
  await page.locator('#history').getByRole('button', { name: /Open analysis of exifsamples_DSCN0010\.jpg/ }).filter({ hasText: id.slice(0, 10) }).click();
  const card = page.locator(`#a-${id}`);
  const alert = card.getByRole('alert');
  await alert.waitFor({ timeout: WAIT });
  const text = await alert.innerText();
  assert.match(text, /Could not load this analysis: The state store is not readable\. INTERNAL/, text);
  assert.is(await card.getByRole('heading').innerText(), 'exifsamples_DSCN0010.jpg');
  const whole = await card.innerText();
  assert.not.match(whole, /waiting for the analysis to start|WAITING/i, whole);
  assert.match(whole, /Not loaded/i, whole);
  await page.screenshot({ path: shots('load-error-laptop') });
  // The gateway answers again: Retry loads it.
  await page.unroute(url);
  await card.getByRole('button', { name: 'Retry' }).click();
  await card.getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  assert.is(await card.getByRole('alert').count(), 0, 'the error is gone once loaded');
  await page.close();
});

t('times from another day carry their date: the timeline of an older analysis and the token expiry', async (ctx) => {
  const id = await completed(ctx);
  // This browser's "today" is two days before the gateway's: the analyses and the token's expiry are on another day.
  const page = await openUi(ctx, PHONE, (p) => p.clock.setFixedTime(Date.now() - 2 * 24 * 3600_000));
  await page.locator('#history').getByRole('button', { name: /Open analysis of exifsamples_DSCN0010\.jpg/ }).filter({ hasText: id.slice(0, 10) }).click();
  const card = page.locator(`#a-${id}`);
  await card.getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  const year = String(new Date().getFullYear());
  const stamps = await card.locator('.timeline time').allInnerTexts();
  assert.ok(stamps.length > 0 && stamps.every((s) => s.includes(year) || s.includes(String(Number(year) + 1))), stamps.join(' | '));
  const session = await page.getByLabel('Signed in').innerText();
  assert.match(session, /until [^\n]*\b20\d\d\b/, session);
  await page.screenshot({ path: shots('other-day-phone') });
  await page.close();
});

t('times name their zone, as the capture time does: the timeline and the token expiry in a viewer zone of UTC+5:30', async (ctx) => {
  const id = await completed(ctx);
  const page = await ctx.browser.newPage({ viewport: LAPTOP, timezoneId: 'Asia/Kolkata', locale: 'en-US' });
  await page.goto(await signedInUrl(ctx.agent));
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: WAIT });
  await page.locator('#history').getByRole('button', { name: /Open analysis of exifsamples_DSCN0010\.jpg/ }).filter({ hasText: id.slice(0, 10) }).click();
  const card = page.locator(`#a-${id}`);
  await card.getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  const stamps = await card.locator('.timeline time').allInnerTexts();
  assert.ok(stamps.length > 0 && stamps.every((s) => /\d:\d\d:\d\d [AP]M GMT\+5:30$/.test(s)), stamps.join(' | '));
  assert.match(await page.getByLabel('Signed in').innerText(), /until [^\n]*\d:\d\d [AP]M GMT\+5:30/);
  await card.screenshot({ path: shots('zone-named-laptop') });
  await page.close();
});

t('gateway health: a failed poll shows the error, and the old answer marked "as of", its badge no longer a green ok', async (ctx) => {
  const page = await openUi(ctx, LAPTOP);
  const status = page.locator('#health .badge').first();
  await status.waitFor({ timeout: WAIT });
  assert.not.match(await status.innerText(), /as of/i);
  await page.route('**/api/v1/health', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'health is down' } }) }));
  const error = page.locator('#health .error').first();
  await error.waitFor({ timeout: 15_000 });
  assert.match(await error.innerText(), /health is down\s+Below: the last answer, as of \d/);
  assert.match(await status.innerText(), /, as of \d/i); // (the badge is upper-cased by CSS)
  assert.match((await status.getAttribute('class')) ?? '', /badge-stale/);
  await page.locator('#health').screenshot({ path: shots('health-stale-laptop') });
  await page.close();
});

t("a token the gateway refuses: the sign-in prompt gives the gateway's own reason", async (ctx) => {
  const valid = await techToken(ctx.agent);
  const parts = valid.split('.');
  const forged = `${parts[0]}.${parts[1]}.${parts[2]!.slice(0, -6)}AAAAAA`;
  for (const [token, why] of [
    ['not-a-token', /it is not a JWT/],
    [forged, /signature does not match/],
  ] as const) {
    const page = await ctx.browser.newPage({ viewport: PHONE });
    await page.goto(`${ctx.agent.http.url}/#token=${token}`);
    const alert = page.locator('.signin .banner[role="alert"]');
    await alert.waitFor({ timeout: WAIT });
    // Every refused request signs out with a reason; wait until all have answered.
    await page.waitForTimeout(500);
    const text = await alert.innerText();
    assert.match(text, why, text);
    assert.not.match(text, /it may have expired/, text);
    if (token === forged) await page.screenshot({ path: shots('bad-token-phone') });
    await page.close();
  }
});

/** A network (or proxy) that lets the page's API calls through but drops the live feed's WebSocket upgrade. */
const NO_WEBSOCKET = `window.WebSocket = class {
  constructor() { setTimeout(() => this.onclose && this.onclose({ code: 1006 }), 50); }
  close() {}
};`;

t('the history is loaded without the live feed, and says it is loading, not "None yet.", until the gateway has answered', async (ctx) => {
  const id = await completed(ctx);
  const page = await ctx.browser.newPage({ viewport: PHONE });
  await page.addInitScript(NO_WEBSOCKET);
  // The first history answer is held back: until it comes, nothing is known about past analyses.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  await page.route((url) => url.pathname === '/api/v1/analyses', async (route) => {
    await held;
    await route.continue();
  });
  await page.goto(await signedInUrl(ctx.agent));
  await page.getByRole('status').filter({ hasText: 'Reconnecting' }).waitFor({ timeout: WAIT });
  const history = page.locator('#history');
  await history.getByRole('heading', { name: 'Recent analyses' }).waitFor({ timeout: WAIT });
  const loading = await history.innerText();
  assert.not.match(loading, /None yet/, `no "none" before the gateway has said so: ${loading}`);
  assert.match(loading, /Loading/, loading);
  await page.screenshot({ path: shots('history-loading-phone'), fullPage: true });
  release();
  // The feed never connects (a proxy without WebSocket): the history comes all the same.
  await history.getByRole('button', { name: /Open analysis of exifsamples_DSCN0010\.jpg/ }).filter({ hasText: id.slice(0, 10) }).waitFor({ timeout: WAIT });
  assert.not.match(await history.innerText(), /None yet|Loading/);
  await page.screenshot({ path: shots('history-without-feed-phone'), fullPage: true });
  await page.close();
});

t('a result card whose stored label cannot be read says so, instead of looking as if nobody had labelled the photo', async (ctx) => {
  const id = await completed(ctx);
  const page = await openUi(ctx, PHONE);
  await page.route(`**/api/v1/analyses/${id}/label`, (route) =>
    route.request().method() === 'GET'
      ? route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: { code: 'INTERNAL', message: 'The label store is not readable.' } }) })
      : route.continue(),
  );
  await page.locator('#history').getByRole('button', { name: /Open analysis of exifsamples_DSCN0010\.jpg/ }).filter({ hasText: id.slice(0, 10) }).click();
  const teach = page.locator(`#a-${id}`).getByRole('region', { name: 'Teach the gateway' });
  await teach.waitFor({ timeout: WAIT });
  const alert = teach.getByRole('alert');
  await alert.waitFor({ timeout: WAIT });
  assert.match(await alert.innerText(), /already saved.*The label store is not readable/s);
  await teach.scrollIntoViewIfNeeded();
  await page.screenshot({ path: shots('label-unreadable-phone') });
  await page.close();
});

t.run();
