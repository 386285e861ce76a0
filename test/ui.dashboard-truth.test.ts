/**
 * What the cloud dashboard shows must be true (review of the fleet dashboard): a failed query is
 * said per query and not hidden by another's success; presence is unknown when it cannot be
 * loaded; stored events of another day carry their date; the evidence column names the last
 * *recognised* photo; the machine history is in the order of the times it shows, each line named
 * so a technician's photo can be found; an abstention is not scored as a wrong answer; the
 * accuracy panel's empty state is readable on a phone.
 *
 * A real relay in-process, fed over MQTT by a test gateway (no agent or model needed), and Debian
 * Chromium; page.route makes /graphql fail where a failure is the point.
 */
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page, Route } from 'playwright-core';
import type { MqttClient } from 'mqtt';
import type { Relay } from '@tu/relay';
import { ensureBuilt, launchChromium } from './support/browser.js';
import { labelled, uploaded } from './support/fixtures.js';
import { REPO_ROOT } from './support/real.js';
import { issueToken } from '@tu/relay';
import { tmpDir } from './support/harness.js';
import { freePort } from './support/processes.js';
import { addGateway, analysisFlow, connectGateway, envelope, JWT_SECRET, publishEvent, startTestRelay, tokenFor, type Envelope } from './support/relay.js';

type Ctx = { relay: Relay; browser: Browser; gw: MqttClient; token: string; oldId: string; recognisedId: string; failedId: string; olderFailedId: string };
const t = suite<Ctx>('ui: the cloud dashboard shows only what is true (errors per query, presence, dates, evidence, accuracy)');

const GW = 'gw-truth';
const WAIT = 30_000;
/** The dashboard polls gateways every 10 s: a wait for "the next poll" allows that and some. */
const POLL_WAIT = 16_000;
const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };
const SHOTS = '/tmp/dash-fix';
const FILE = 'yard-7-excavator.jpg';
const shot = (name: string): string => {
  fs.mkdirSync(SHOTS, { recursive: true });
  return path.join(SHOTS, name);
};

const NOW = Date.now();
/** Three days ago: a stored event of another day (its line must carry the date). */
const OLD = new Date(NOW - 3 * 86_400_000);
/** Ten minutes ago: the recognised photo; its analysis ends 10 s later, after the failed one. */
const RECOGNISED = new Date(NOW - 10 * 60_000);
/** One second after the recognised photo started: the newest photo, and it failed. */
const FAILED = new Date(RECOGNISED.getTime() + 1000);

const registered = { id: 'TRUTH-1', name: 'Truth dozer', type: 'excavator' };
/** What the two statuses of a step cut short mean, as the dashboard says them (shared/src/step-status.ts). */
const SKIPPED = 'it never started: the analysis ended before it could';
const CANCELLED = 'it had started, but the analysis ended before it finished; an answer arriving later is ignored';
const send = async (ctx: Ctx, events: Envelope[]): Promise<void> => {
  for (const e of events) assert.is(await publishEvent(ctx.gw, GW, e), 'ok');
};
const idOf = (events: Envelope[]): string => (events[0]!.data as { analysisId: string }).analysisId;

t.before(async (ctx) => {
  await ensureBuilt(path.join(REPO_ROOT, 'relay/ui'));
  ctx.relay = await startTestRelay();
  ctx.gw = await connectGateway(ctx.relay.mqttUrl, GW, await addGateway(ctx.relay, GW, 'tenant-truth'));
  ctx.token = await tokenFor('tenant-truth', 'fleet-truth');

  const old = analysisFlow(GW, { machineId: 'TRUTH-1', registered, at: OLD });
  // The recognised photo: uploaded with a file name; its analysis took 10 s, so the relay (which
  // pages a machine's analyses by end time) lists it above the failed one that started later.
  const recognised = analysisFlow(GW, { machineId: 'TRUTH-1', registered, at: RECOGNISED, recognised: { machineType: 'excavator', confidence: 0.95 } });
  const done = recognised[recognised.length - 1]!;
  const endsAt = new Date(RECOGNISED.getTime() + 10_000).toISOString();
  done.data = { ...(done.data as object), completedAt: endsAt };
  done.time = endsAt;
  const up = envelope(GW, 'tu.image.uploaded', { ...uploaded(GW, idOf(recognised)), machineId: 'TRUTH-1', uploadedAt: new Date(RECOGNISED.getTime() - 500).toISOString(), via: 'ui', fileName: FILE }, { time: new Date(RECOGNISED.getTime() - 500).toISOString() });
  const failed = analysisFlow(GW, { machineId: 'TRUTH-1', registered, at: FAILED, outcome: 'failed' });
  // Of another machine: a failure as gateways older than cancelled/skipped summarised it.
  const olderFailed = analysisFlow(GW, { machineId: 'TRUTH-OLD', registered: null, at: OLD, outcome: 'failed', olderGateway: true });
  await send(ctx, [...old, up, ...recognised, ...failed, ...olderFailed]);
  ctx.oldId = idOf(old);
  ctx.recognisedId = idOf(recognised);
  ctx.failedId = idOf(failed);
  ctx.olderFailedId = idOf(olderFailed);
  ctx.browser = await launchChromium();
});
t.after(async (ctx) => {
  await ctx.browser?.close();
  ctx.gw?.end(true);
  await ctx.relay?.stop();
});

const signIn = async (ctx: Ctx, viewport = LAPTOP): Promise<Page> => {
  const page = await ctx.browser.newPage({ viewport });
  await page.goto(ctx.relay.url);
  await page.getByLabel('Access token (JWT)').fill(ctx.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('status').filter({ hasText: /^Live$/ }).waitFor({ timeout: WAIT });
  return page;
};
const machines = (page: Page) => page.getByRole('region', { name: 'Machines', exact: true });
const dozerRow = (page: Page) => machines(page).getByRole('row').filter({ hasText: 'Truth dozer' });
/** The ids of the feed's lines, in order. */
const feedIds = (page: Page): Promise<string[]> => page.getByRole('list', { name: 'Live analysis events' }).locator('li[data-event-id]').evaluateAll((els) => els.map((e) => e.getAttribute('data-event-id') ?? ''));
/** A GraphQL request's operation text and variables. */
const op = (route: Route): { query: string; variables: Record<string, unknown> } => {
  try {
    return JSON.parse(route.request().postData() ?? '{}') as { query: string; variables: Record<string, unknown> };
  } catch {
    return { query: '', variables: {} };
  }
};
/** Polls an asynchronous condition (a page or the relay's storage) until it holds. */
const eventually = async (pred: () => Promise<boolean>, what: string): Promise<void> => {
  const end = Date.now() + WAIT;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};
const gatewaysAnswered = (page: Page, status: number) =>
  page.waitForResponse((r) => r.url().endsWith('/graphql') && r.status() === status && (r.request().postData() ?? '').includes('gateways(first'), { timeout: POLL_WAIT });

t('phone: with no label yet, the accuracy panel says so in full, not cut off inside its scrolling table (review item 6)', async (ctx) => {
  const page = await signIn(ctx, PHONE);
  const panel = page.getByRole('region', { name: 'Real-world accuracy', exact: true });
  const empty = panel.getByText('No technician has confirmed or corrected a recognition yet.');
  await empty.waitFor({ timeout: WAIT });
  const box = await empty.boundingBox();
  assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, `the whole sentence is on screen: ${JSON.stringify(box)}`);
  await page.screenshot({ path: shot('accuracy-empty-390x844.png'), fullPage: true });
  await page.close();
});

t('a stored event of another day shows its date; one of today its time alone (review item 3)', async (ctx) => {
  const page = await signIn(ctx);
  const feed = page.getByRole('list', { name: 'Live analysis events' });
  const oldLine = feed.getByRole('listitem').filter({ hasText: ctx.oldId }).filter({ hasText: 'analysis.completed' });
  await oldLine.waitFor({ timeout: WAIT });
  const shown = await oldLine.locator('time').innerText();
  assert.match(shown, new RegExp(`\\b${OLD.getFullYear()}\\b`), `the old event's time carries its date: "${shown}"`);
  if (new Date(RECOGNISED).toDateString() === new Date().toDateString()) {
    const today = await feed.getByRole('listitem').filter({ hasText: ctx.recognisedId }).filter({ hasText: 'analysis.started' }).locator('time').innerText();
    assert.not.match(today, new RegExp(`\\b${RECOGNISED.getFullYear()}\\b`), `today's event shows its time alone: "${today}"`);
  }
  // The upload line names the file, as the technician knows the photo.
  assert.match(await feed.getByRole('listitem').filter({ hasText: 'tu.image.uploaded' }).filter({ hasText: ctx.recognisedId }).innerText(), new RegExp(FILE.replace(/\./g, '\\.')));
  await page.close();
});

t('the evidence is the last *recognised* photo, with its time and analysis; the history is in the order of its shown times, each line named (review item 5)', async (ctx) => {
  const page = await signIn(ctx);
  const row = dozerRow(page);
  await row.waitFor({ timeout: WAIT });
  const headers = await machines(page).getByRole('columnheader').allInnerTexts();
  const col = headers.indexOf('Last recognised photo (evidence)');
  assert.ok(col >= 0, `the column says which photo it is: ${JSON.stringify(headers)}`);
  const cell = row.getByRole('cell').nth(col);
  assert.match(await cell.innerText(), /^excavator \(95 % confidence\)/);
  assert.match(await cell.innerText(), new RegExp(ctx.recognisedId.slice(0, 10)), 'names its analysis');
  assert.is(await cell.locator('time').getAttribute('datetime'), RECOGNISED.toISOString(), 'with the time its analysis started');
  assert.match(await cell.innerText(), new RegExp(FILE.replace(/\./g, '\\.')), 'and the file the technician uploaded');

  await row.getByRole('button', { name: 'Truth dozer' }).click();
  const detail = page.getByRole('article', { name: 'Machine Truth dozer' });
  await detail.waitFor({ timeout: WAIT });
  assert.match(await detail.innerText(), /Last recognised photo\s+excavator \(95 % confidence\)/);
  const lines = detail.getByTestId('machine-analyses').locator('li[data-analysis-id]');
  await lines.nth(2).waitFor({ timeout: WAIT });
  const ids = await lines.evaluateAll((els) => els.map((e) => e.getAttribute('data-analysis-id')));
  assert.equal(ids, [ctx.failedId, ctx.recognisedId, ctx.oldId], 'newest start first: the failed photo started after the recognised one');
  const times = await lines.evaluateAll((els) => els.map((e) => Date.parse(e.querySelector('time')?.getAttribute('datetime') ?? '')));
  assert.equal(times, [...times].sort((a, b) => b - a), 'in the order of the times shown');
  for (const [i, id] of ids.entries()) assert.match(await lines.nth(i).innerText(), new RegExp(id!.slice(0, 10)), 'each line shows its analysis id prefix');
  assert.match(await lines.nth(1).innerText(), new RegExp(FILE.replace(/\./g, '\\.')), 'and the file name when the dashboard has it');
  assert.match(await lines.nth(0).innerText(), /^failed/);
  // What became of the steps the failure cut short, with what it means; none said of the completed ones.
  assert.is(await lines.nth(0).getByTestId('cut-short-steps').innerText(), `Not finished: comparison skipped (${SKIPPED}); metadata cancelled (${CANCELLED})`);
  assert.is(await detail.getByTestId('cut-short-steps').count(), 1);
  await page.screenshot({ path: shot('detail-1366x768.png'), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: shot('detail-390x844.png'), fullPage: true });
  await page.close();
});

t('failures say what became of the steps a failure cut short, from a gateway of now and from one older than cancelled/skipped alike', async (ctx) => {
  const page = await signIn(ctx);
  const failures = page.getByRole('region', { name: 'Failures', exact: true });
  for (const id of [ctx.failedId, ctx.olderFailedId]) {
    const line = failures.getByRole('listitem').filter({ hasText: id });
    await line.waitFor({ timeout: WAIT });
    // The older gateway said pending and running of a finished analysis: never shown as such.
    assert.is(await line.getByTestId('cut-short-steps').innerText(), `Not finished: comparison skipped (${SKIPPED}); metadata cancelled (${CANCELLED})`, id);
  }
  // When it failed, said as such, and of which machine: by its registered name when the table has it.
  const failed = failures.locator(`li[data-analysis-id="${ctx.failedId}"]`);
  await failed.filter({ hasText: 'Truth dozer' }).waitFor({ timeout: WAIT });
  assert.match(await failed.innerText(), new RegExp(`^failed .+ · machine Truth dozer TRUTH-1 on gateway ${GW} · analysis ${ctx.failedId}: recognition: no model \\[MODEL_NOT_LOADED\\]`));
  assert.is(await failed.locator('time').getAttribute('datetime'), new Date(FAILED.getTime() + 6).toISOString(), 'the time it failed');
  assert.match(await failures.locator(`li[data-analysis-id="${ctx.olderFailedId}"]`).innerText(), new RegExp(`· machine TRUTH-OLD on gateway ${GW} ·`));
  assert.not.match(await failures.innerText(), /\b(running|pending|waiting)\b/);
  await page.setViewportSize(PHONE);
  await failures.scrollIntoViewIfNeeded();
  await page.screenshot({ path: shot('failures-cut-short-390x844.png') });
  await page.close();
});

t('a failed search is said and shows no rows of another search, and the gateways poll does not hide it (review item 1)', async (ctx) => {
  const page = await signIn(ctx);
  await dozerRow(page).waitFor({ timeout: WAIT });
  // The relay fails this one search (500 with a GraphQL error); everything else answers.
  await page.route('**/graphql', async (route) => {
    const { query, variables } = op(route);
    if (query.includes('machines(first') && variables['s'] === 'zzz') await route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ errors: [{ message: 'search index unavailable' }] }) });
    else await route.continue();
  });
  await page.getByLabel('Search').fill('zzz');
  const alert = page.getByRole('alert').filter({ hasText: 'Machines could not be loaded' });
  await alert.waitFor({ timeout: WAIT });
  assert.match(await alert.innerText(), /search index unavailable/);
  assert.is(await dozerRow(page).count(), 0, 'no row of the previous (empty) search under "zzz"');
  assert.match(await page.getByTestId('machines-note').innerText(), /Could not load search "zzz": search index unavailable/);
  // The next gateways poll succeeds: it clears its own failure only.
  await gatewaysAnswered(page, 200);
  await page.evaluate('new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50)))');
  assert.is(await alert.count(), 1, 'the failed search is still said after the gateways poll');
  assert.is(await dozerRow(page).count(), 0, 'and still no row of another search');
  await page.screenshot({ path: shot('search-failed-1366x768.png'), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: shot('search-failed-390x844.png') });
  // Once the search answers again, the failure is gone with it.
  await page.unroute('**/graphql');
  await page.getByLabel('Search').fill('Truth');
  await dozerRow(page).waitFor({ timeout: WAIT });
  await alert.waitFor({ state: 'detached', timeout: WAIT });
  await page.close();
});

t('when every query answers 502, presence is unknown as of the last good load, and the badge is not a plain "Live" (review item 2)', async (ctx) => {
  const page = await signIn(ctx);
  const gateways = page.getByRole('region', { name: 'Gateways', exact: true });
  const item = gateways.getByRole('listitem').filter({ hasText: GW });
  await item.locator('.badge', { hasText: /^online$/ }).waitFor({ timeout: WAIT });
  const goodAt = Date.now();
  // A proxy in front of the relay: 502 with an HTML page, for every query (the socket stays up).
  await page.route('**/graphql', (route) => route.fulfill({ status: 502, contentType: 'text/html', body: '<html><body><h1>502 Bad Gateway</h1></body></html>' }));
  await gatewaysAnswered(page, 502);
  await item.locator('.badge', { hasText: 'presence unknown' }).waitFor({ timeout: WAIT });
  assert.is(await item.locator('.badge', { hasText: /^online$/ }).count(), 0, 'no current "online" while presence cannot be loaded');
  const asOf = Date.parse((await item.locator('time').first().getAttribute('datetime')) ?? '');
  assert.ok(asOf <= Date.now() && asOf > goodAt - 15_000, `as of the last good load: ${new Date(asOf).toISOString()}`);
  assert.match(await item.innerText(), /online as of/);
  assert.match(await page.getByTestId('gateways-note').innerText(), /Presence unknown: loading failed \(The relay answered 502\)\. Shown as of /);
  const status = await page.getByRole('status').first().innerText();
  assert.is.not(status, 'Live', 'the badge does not say all is live');
  assert.match(status, /queries failing/);
  assert.is(await page.getByRole('alert').filter({ hasText: 'Gateways and failures could not be loaded: The relay answered 502.' }).count(), 1);
  await page.screenshot({ path: shot('relay-502-1366x768.png'), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: shot('relay-502-390x844.png'), fullPage: true });
  await page.close();
});

t('an abstention labelled "no machine" is not scored as a wrong answer, nor "no machine" as never said (review item 4)', async (ctx) => {
  const label = async (over: Parameters<typeof labelled>[0]) => {
    const d = labelled(over);
    await send(ctx, [envelope(GW, 'recognition.labelled', d, { id: d.correctionId, time: d.at })]);
  };
  await label({ label: 'negative', previousLabel: 'unknown', kind: 'correction' });
  await label({ label: 'excavator', previousLabel: 'excavator', kind: 'confirmation' });
  const page = await signIn(ctx);
  const panel = page.getByRole('region', { name: 'Real-world accuracy', exact: true });
  const unknown = panel.locator('tr[data-type="unknown"]');
  await unknown.waitFor({ timeout: WAIT });
  const cells = await unknown.getByRole('cell').allInnerTexts();
  assert.not.match(cells[3] ?? '', /\d+ %/, `no accuracy percentage for abstaining: ${JSON.stringify(cells)}`);
  assert.match(cells[3] ?? '', /^no percentage/);
  const negative = await panel.locator('tr[data-type="negative"]').innerText();
  assert.not.match(negative, /never said/, `"no machine" is not said to be never answered: ${negative}`);
  // Why, in full below the table (not squeezed into a cell).
  const notes = await panel.getByTestId('accuracy-notes').innerText();
  assert.match(notes, /Abstaining is the right answer on a photo without a machine/);
  assert.match(notes, /no machine: the gateway abstained on 1 labelled photo instead of saying "no machine"/);
  assert.match(await panel.locator('tr[data-type="excavator"]').innerText(), /100 %/);
  await page.screenshot({ path: shot('accuracy-1366x768.png'), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: shot('accuracy-390x844.png'), fullPage: true });
  await page.close();
});

/** What the agent's head says when it abstains without a machine-type head (agent/src/services/vision). */
const NO_HEAD = "no head trained (ImageNet top-1 'monastery' is not a machine class ImageNet knows: forklift, crane, tractor)";
const MISMATCH = 'recognised type forklift (confidence 0.97) differs from registered excavator';

/** An analysis' events with its recognition and comparison results replaced, as a real gateway would have sent them. */
function withResults(events: Envelope[], recognition: Record<string, unknown>, comparison: Record<string, unknown>): Envelope[] {
  for (const e of events) {
    const d = e.data as { result?: Record<string, unknown>; results?: { recognition: Record<string, unknown>; comparison: Record<string, unknown> } };
    if (e.type === 'recognition.completed') d.result = { ...d.result, ...recognition };
    if (e.type === 'comparison.completed') d.result = { ...d.result, ...comparison };
    if (e.type === 'analysis.completed' && d.results) d.results = { ...d.results, recognition: { ...d.results.recognition, ...recognition }, comparison: { ...d.results.comparison, ...comparison } };
  }
  return events;
}

t('the machine history and the feed say what the gateway made of each photo: the comparison verdict with its reasons, a confidence named as such, and why no type was named', async (ctx) => {
  const loader = { id: 'TRUTH-2', name: 'Truth loader', type: 'excavator' };
  const forklift = withResults(
    analysisFlow(GW, { machineId: 'TRUTH-2', registered: loader, at: new Date(Date.now() - 5 * 60_000), recognised: { machineType: 'forklift', confidence: 0.97 } }),
    {},
    { verdict: 'mismatch', reasons: [MISMATCH], typeCheck: { registeredType: 'excavator', recognizedType: 'forklift', match: false } },
  );
  const abstained = withResults(
    analysisFlow(GW, { machineId: 'TRUTH-2', registered: loader, at: new Date(Date.now() - 2 * 60_000) }),
    { machineType: 'unknown', confidence: 0.31, unknownReason: NO_HEAD },
    { verdict: 'unknown', reasons: ['type undetermined: the machine type on the photo was not recognised'], typeCheck: { registeredType: 'excavator', recognizedType: 'unknown', match: null } },
  );
  // Still running (only analysis.started so far): its badge must not look like a completed one's.
  const running = analysisFlow(GW, { machineId: 'TRUTH-2', registered: loader, at: new Date(Date.now() - 60_000) }).slice(0, 1);
  await send(ctx, [...forklift, ...abstained, ...running]);
  const page = await signIn(ctx);
  const row = machines(page).getByRole('row').filter({ hasText: 'Truth loader' });
  await row.waitFor({ timeout: WAIT });
  // The latest photo: no type, and the gateway's own reason, not a guess that leaves out the true one.
  const evidence = row.getByTestId('last-recognised');
  await evidence.filter({ hasText: 'no head trained' }).waitFor({ timeout: WAIT });
  assert.not.match(await evidence.innerText(), /not sure enough/);

  await row.getByRole('button', { name: 'Truth loader' }).click();
  const detail = page.getByRole('article', { name: 'Machine Truth loader' });
  const lines = detail.getByTestId('machine-analyses').locator('li[data-analysis-id]');
  await lines.nth(1).waitFor({ timeout: WAIT });
  const mismatch = await detail.locator(`li[data-analysis-id="${idOf(forklift)}"]`).innerText();
  assert.match(mismatch, /recognised: forklift \(97 % confidence\)/, `the number says it is a confidence: ${mismatch}`);
  assert.match(mismatch, new RegExp(`comparison: does NOT match the registered machine \\(${MISMATCH.replace(/[()]/g, '\\$&')}\\)`), `the verdict and its reason: ${mismatch}`);
  const unknown = await detail.locator(`li[data-analysis-id="${idOf(abstained)}"]`).innerText();
  assert.match(unknown, /no type named \(the gateway abstained: no head trained/, `why no type: ${unknown}`);
  assert.match(unknown, /comparison: cannot tell whether it is the registered machine \(type undetermined/);
  const runningBadge = detail.locator(`li[data-analysis-id="${idOf(running)}"] .badge`);
  assert.is(await runningBadge.innerText(), 'running');
  assert.not.match((await runningBadge.getAttribute('class')) ?? '', /\bok\b/, 'a running analysis is not coloured as completed');
  // The feed's comparison line carries the verdict too.
  const feed = page.getByRole('list', { name: 'Live analysis events' });
  assert.match(await feed.getByRole('listitem').filter({ hasText: idOf(forklift) }).filter({ hasText: 'comparison.completed' }).innerText(), /does NOT match the registered machine/);
  await detail.scrollIntoViewIfNeeded();
  await page.screenshot({ path: shot('verdict-1366x768.png'), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: shot('verdict-390x844.png'), fullPage: true });
  await page.close();
});

t('the live feed says when its stored events could not be loaded, not "Waiting for events…" as if there were none', async (ctx) => {
  const page = await ctx.browser.newPage({ viewport: LAPTOP });
  // The relay fails the stored events (every other query answers): the gateway's events are stored, but not shown.
  await page.route('**/graphql', async (route) => {
    if (op(route).query.includes('recentEvents')) await route.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ errors: [{ message: 'event store unavailable' }] }) });
    else await route.continue();
  });
  await page.goto(ctx.relay.url);
  await page.getByLabel('Access token (JWT)').fill(ctx.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'Stored events could not be loaded' }).waitFor({ timeout: WAIT });
  const feed = page.getByRole('region', { name: 'Live feed', exact: true });
  const text = await feed.innerText();
  assert.not.match(text, /Waiting for events/, `the feed does not pass a failed load off as no events: ${text}`);
  assert.match(text, /Stored events not loaded \(event store unavailable\)/, text);
  await page.screenshot({ path: shot('feed-not-loaded-1366x768.png') });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: shot('feed-not-loaded-390x844.png') });
  await page.close();
});

t('a machine with more analyses than its detail lists says the list is not its whole history', async (ctx) => {
  const roller = { id: 'TRUTH-3', name: 'Truth roller', type: 'roller' };
  const base = Date.now() - 60 * 60_000;
  const flows = Array.from({ length: 21 }, (_, i) => analysisFlow(GW, { machineId: 'TRUTH-3', registered: roller, at: new Date(base + i * 60_000), recognised: { machineType: 'roller', confidence: 0.9 } }));
  await send(ctx, flows.flat());
  const page = await signIn(ctx);
  const row = machines(page).getByRole('row').filter({ hasText: 'Truth roller' });
  await row.waitFor({ timeout: WAIT });
  await row.getByRole('button', { name: 'Truth roller' }).click();
  const detail = page.getByRole('article', { name: 'Machine Truth roller' });
  const lines = detail.getByTestId('machine-analyses').locator('li[data-analysis-id]');
  await lines.nth(19).waitFor({ timeout: WAIT });
  assert.is(await lines.count(), 20, 'a page of the relay');
  // The oldest is not listed: the detail says there is more than it shows.
  assert.is(await detail.locator(`li[data-analysis-id="${idOf(flows[0]!)}"]`).count(), 0);
  assert.match(await detail.getByTestId('machine-analyses-more').innerText(), /The newest 20 are listed; the relay has older analyses of this machine/);
  await page.screenshot({ path: shot('history-more-1366x768.png'), fullPage: true });
  await page.close();
});


t('more failed analyses than the Failures list shows: it says it lists the newest, not all of them', async (ctx) => {
  const base = Date.now() - 2 * 86_400_000;
  const flows = Array.from({ length: 21 }, (_, i) => analysisFlow(GW, { machineId: 'TRUTH-4', registered: null, at: new Date(base + i * 60_000), outcome: 'failed' }));
  await send(ctx, flows.flat());
  const page = await signIn(ctx, PHONE);
  const failures = page.getByRole('region', { name: 'Failures', exact: true });
  const more = failures.getByTestId('failures-more');
  await more.waitFor({ timeout: WAIT });
  assert.is(await failures.getByRole('listitem').count(), 20, 'a page of the relay');
  assert.match(await more.innerText(), /The newest 20 are listed; the relay has older failed analyses, not shown here\./);
  await more.scrollIntoViewIfNeeded();
  await page.screenshot({ path: shot('failures-more-390x844.png') });
  await page.close();
  const laptop = await signIn(ctx, LAPTOP);
  const wide = laptop.getByRole('region', { name: 'Failures', exact: true });
  await wide.getByTestId('failures-more').waitFor({ timeout: WAIT });
  await wide.screenshot({ path: shot('failures-more-1366x768.png') });
  await laptop.close();
});

t('times name their zone: the feed of a viewer in UTC+5:30 says GMT+5:30', async (ctx) => {
  const page = await ctx.browser.newPage({ viewport: PHONE, timezoneId: 'Asia/Kolkata', locale: 'en-US' });
  await page.goto(ctx.relay.url);
  await page.getByLabel('Access token (JWT)').fill(ctx.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const feed = page.getByRole('list', { name: 'Live analysis events' });
  // Any stored event (the tests before this one sent more than the feed keeps).
  const line = feed.getByRole('listitem').filter({ has: page.locator('time') }).first();
  await line.waitFor({ timeout: WAIT });
  const shown = await line.locator('time').innerText();
  assert.match(shown, /\d:\d\d:\d\d [AP]M GMT\+5:30$/, shown);
  await line.screenshot({ path: shot('zone-named-390x844.png') });
  await page.close();
});

t('a relay restart: the live feed reconnects by itself, and what was stored meanwhile shows as a reload would show it', async (ctx) => {
  const dataDir = tmpDir('tu-dash-restart-');
  const overrides = { dataDir, 'http.port': await freePort(), 'ingress.port': await freePort() };
  let relay = await startTestRelay({ overrides });
  const page = await ctx.browser.newPage({ viewport: LAPTOP });
  try {
    const secret = await addGateway(relay, 'gw-restart', 'tenant-restart');
    const token = await tokenFor('tenant-restart', 'fleet-restart');
    const reg = { id: 'RESTART-1', name: 'Restart crane', type: 'crane' };
    const flow = async (at: Date): Promise<string> => {
      const gw = await connectGateway(relay.mqttUrl, 'gw-restart', secret);
      const events = analysisFlow('gw-restart', { machineId: 'RESTART-1', registered: reg, at, recognised: { machineType: 'crane', confidence: 0.9 } });
      try {
        for (const e of events) assert.is(await publishEvent(gw, 'gw-restart', e), 'ok');
      } finally {
        gw.end(true);
      }
      const id = idOf(events);
      await eventually(async () => (await relay.storage.getAnalysis('tenant-restart', id))?.status === 'completed', 'the analysis stored');
      return id;
    };
    const first = new Date(Date.now() - 10 * 60_000);
    await flow(first);
    await page.goto(relay.url);
    await page.getByLabel('Access token (JWT)').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const live = page.getByRole('status').filter({ hasText: /^Live$/ });
    await live.waitFor({ timeout: WAIT });
    const row = machines(page).getByRole('row').filter({ hasText: 'Restart crane' });
    const seen = async () => row.getByTestId('last-seen').locator('time').getAttribute('datetime');
    await row.waitFor({ timeout: WAIT });
    assert.is(await seen(), first.toISOString());

    // The relay goes down: the dashboard's next attempt to reconnect fails (connection refused).
    const failedAttempt = page.waitForEvent('websocket', { timeout: WAIT }).then((ws) => new Promise((r) => (ws.on('socketerror', r), ws.on('close', r))));
    await relay.stop();
    await failedAttempt;
    // Back up; the dashboard is kept from reconnecting until an analysis has ended and been stored.
    let open = false;
    await page.routeWebSocket('**/graphql', (ws) => (open ? ws.connectToServer() : ws.close({ code: 1012, reason: 'restarting' })));
    relay = await startTestRelay({ overrides });
    const second = new Date(Date.now() - 60_000);
    const secondId = await flow(second);
    open = true;
    await live.waitFor({ timeout: WAIT });
    assert.is(await page.getByRole('alert').filter({ hasText: 'live feed stopped' }).count(), 0, 'the feed did not stop for good');
    // As a reload shows it: the machine was last seen in the analysis stored while the page was not connected.
    await eventually(async () => (await seen()) === second.toISOString(), 'last seen of the analysis stored meanwhile');
    assert.match(await row.getByTestId('last-recognised').innerText(), new RegExp(secondId.slice(0, 10)));
    await page.getByRole('list', { name: 'Live analysis events' }).getByRole('listitem').filter({ hasText: secondId }).filter({ hasText: 'analysis.completed' }).waitFor({ timeout: WAIT });
    await page.screenshot({ path: shot('relay-restarted-1366x768.png') });
  } finally {
    await page.close();
    await relay.stop();
  }
});

t('a token that expires while the dashboard is open: back to sign-in at once with why, never "Reload the page to retry"', async (ctx) => {
  const token = await issueToken({ secret: JWT_SECRET }, { sub: 'fleet-truth', tenant: 'tenant-truth' }, '7s');
  const page = await ctx.browser.newPage({ viewport: PHONE });
  // Every alert the page ever shows, however briefly.
  await page.addInitScript("window.__alerts = []; new MutationObserver(() => document.querySelectorAll('[role=alert]').forEach((e) => window.__alerts.push(e.textContent))).observe(document, { subtree: true, childList: true, characterData: true });");
  await page.goto(ctx.relay.url);
  await page.getByLabel('Access token (JWT)').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('status').filter({ hasText: /^Live$/ }).waitFor({ timeout: WAIT });
  const form = page.getByLabel('Access token (JWT)');
  await form.waitFor({ timeout: WAIT });
  const alerts = await page.evaluate<string[]>('window.__alerts');
  assert.not.ok(alerts.some((a) => /Reload the page/.test(a)), `no action that cannot help: ${JSON.stringify([...new Set(alerts)])}`);
  assert.match(await page.getByRole('alert').innerText(), /The relay refused this token \(.*the token expired.*\)\. Sign in again with a valid token\./);
  await page.screenshot({ path: shot('token-expired-390x844.png') });
  await page.close();
});

t('counts of a thousand and more are grouped as the viewer writes numbers: "1,234 confirmed", not "1234"', async (ctx) => {
  // 1,234 confirmations of one type, published as a gateway publishes labels (QoS 1, a hundred in flight).
  // And one the technician corrected: 1,234 of 1,235 is 99.92 %, which must not read as a flawless 100 %.
  const labels = [...Array.from({ length: 1234 }, () => labelled({ label: 'bulldozer', previousLabel: 'bulldozer', kind: 'confirmation' })), labelled({ label: 'grader', previousLabel: 'bulldozer', kind: 'correction' })];
  for (let i = 0; i < labels.length; i += 100)
    await Promise.all(labels.slice(i, i + 100).map(async (d) => assert.is(await publishEvent(ctx.gw, GW, envelope(GW, 'recognition.labelled', d, { id: d.correctionId, time: d.at })), 'ok')));
  const page = await ctx.browser.newPage({ viewport: PHONE, locale: 'en-US' });
  await page.goto(ctx.relay.url);
  await page.getByLabel('Access token (JWT)').fill(ctx.token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const row = page.getByRole('region', { name: 'Real-world accuracy', exact: true }).locator('tr[data-type="bulldozer"]');
  await row.getByRole('cell').first().filter({ hasText: '1,234' }).waitFor({ timeout: WAIT });
  assert.equal((await row.getByRole('cell').allInnerTexts()).slice(0, 4), ['1,234', '1', '0', '99.9 %']);
  await row.scrollIntoViewIfNeeded();
  await page.screenshot({ path: shot('accuracy-thousands-390x844.png') });
  await page.close();
});

t('a machine\'s last position from an older photo than its last sighting says so, with that photo and its time', async (ctx) => {
  const grader = { id: 'TRUTH-GPS', name: 'Truth grader', type: 'grader' };
  const at = new Date(Date.now() - 2 * 3_600_000);
  const located = analysisFlow(GW, { machineId: 'TRUTH-GPS', registered: grader, at, recognised: { machineType: 'grader', confidence: 0.9 } });
  // The photo's EXIF GPS, as the metadata service copies it into the machine record (agent/src/services/metadata/sort.ts).
  for (const e of located) if (e.type === 'metadata.sorted') (e.data as { result: { record: Record<string, unknown> } }).result.record.lastPosition = { latitude: 48.2082, longitude: -16.3738, altitude: 171.4 };
  const later = new Date(Date.now() - 5 * 60_000);
  const unlocated = analysisFlow(GW, { machineId: 'TRUTH-GPS', registered: grader, at: later, recognised: { machineType: 'grader', confidence: 0.9 } });
  await send(ctx, [...located, ...unlocated]);
  const page = await signIn(ctx);
  const row = machines(page).getByRole('row').filter({ hasText: 'Truth grader' });
  await row.waitFor({ timeout: WAIT });
  await row.getByRole('button', { name: 'Truth grader' }).click();
  const detail = page.getByRole('article', { name: 'Machine Truth grader' });
  await detail.waitFor({ timeout: WAIT });
  assert.is(await detail.getByTestId('detail-last-seen').locator('time').getAttribute('datetime'), later.toISOString(), 'last seen in the newer photo');
  const position = detail.getByTestId('last-position');
  const text = await position.innerText();
  assert.match(text, /^48\.20820° N, 16\.37380° W, 171 m altitude\n/, text);
  assert.match(text, new RegExp(`from an older photo \\(analysis ${idOf(located).slice(0, 10)}, started .+\\): the 1 newer photo carried no GPS position, so the machine may have moved since`), text);
  assert.is(await position.locator('time').getAttribute('datetime'), at.toISOString(), 'with the time of the photo the position is from');
  await detail.scrollIntoViewIfNeeded();
  await page.setViewportSize(PHONE);
  await detail.screenshot({ path: shot('position-older-390x844.png') });
  await page.close();
});

t('phone (375 px): a machine\'s facts stack under their names and use the card\'s width, not a column a third of it', async (ctx) => {
  const page = await signIn(ctx, { width: 375, height: 812 });
  const row = dozerRow(page);
  await row.waitFor({ timeout: WAIT });
  await row.getByRole('button', { name: 'Truth dozer' }).click();
  const detail = page.getByRole('article', { name: 'Machine Truth dozer' });
  const facts = detail.locator('dl.facts');
  await facts.waitFor({ timeout: WAIT });
  const list = await facts.boundingBox();
  const values = await facts.locator('dd').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().width));
  assert.ok(list && values.length > 0 && values.every((w) => w >= list.width - 1), `each value as wide as the list (${list?.width}): ${JSON.stringify(values)}`);
  assert.is(await page.evaluate<number>('document.documentElement.scrollWidth'), 375, 'no sideways scrolling of the page');
  await detail.screenshot({ path: shot('detail-facts-375x812.png') });
  await page.close();
});

t('the feed says what a technician labelled: who, and what the gateway said and the technician chose', async (ctx) => {
  const correction = labelled({ label: 'wheel_loader', previousLabel: 'excavator', kind: 'correction', by: 'Anna (tech 17)' });
  const confirmation = labelled({ label: 'negative', previousLabel: 'negative', kind: 'confirmation', by: 'Ben' });
  await send(ctx, [correction, confirmation].map((d) => envelope(GW, 'recognition.labelled', d, { id: d.correctionId, time: d.at })));
  const page = await signIn(ctx);
  const feed = page.getByRole('list', { name: 'Live analysis events' });
  const line = (d: { correctionId: string }) => feed.locator(`li[data-event-id="${d.correctionId}"]`);
  await line(correction).waitFor({ timeout: WAIT });
  assert.match(await line(correction).innerText(), /recognition\.labelled \S+ technician Anna \(tech 17\) corrected excavator to wheel loader$/);
  assert.match(await line(confirmation).innerText(), /recognition\.labelled \S+ technician Ben confirmed no machine$/);
  await page.close();
});

t('phone (375 px): every fact of a machine row is on screen with its column\'s name, not off to the side of a sideways-scrolling table', async (ctx) => {
  const page = await signIn(ctx, { width: 375, height: 812 });
  const row = dozerRow(page);
  await row.waitFor({ timeout: WAIT });
  for (const cell of await row.getByRole('cell').all()) {
    if (!(await cell.isVisible())) continue;
    const box = await cell.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 375, `${await cell.getAttribute('data-label')}: ${JSON.stringify(box)}`);
  }
  const seen = row.getByTestId('last-seen');
  assert.is(await page.evaluate<string>(`getComputedStyle(document.querySelector('tr[data-machine-id="TRUTH-1"] [data-testid="last-seen"]'), '::before').content`), '"Last seen"', 'named in the cell');
  assert.ok(await seen.locator('time').isVisible());
  assert.is(await page.evaluate<number>('document.documentElement.scrollWidth'), 375, 'no sideways scrolling of the page');
  await row.scrollIntoViewIfNeeded();
  await page.screenshot({ path: shot('machines-375x812.png') });
  await page.close();
});

t('an online gateway\'s time is said to be its last event or connection, an offline one\'s its last sighting', async (ctx) => {
  const off = await connectGateway(ctx.relay.mqttUrl, 'gw-truth-off', await addGateway(ctx.relay, 'gw-truth-off', 'tenant-truth'));
  // Its last will (offline) is published when the connection drops.
  off.stream.destroy();
  const page = await signIn(ctx);
  const gateways = page.getByRole('region', { name: 'Gateways', exact: true });
  const item = (id: string) => gateways.getByRole('listitem').filter({ has: page.locator('code', { hasText: new RegExp(`^${id}$`) }) });
  const online = item(GW);
  const offline = item('gw-truth-off');
  await offline.filter({ hasText: 'offline' }).waitFor({ timeout: POLL_WAIT });
  assert.match(await online.innerText(), /^online .* · last event or connection \d/);
  assert.match(await offline.innerText(), /^offline .* · last seen \d/);
  await page.close();
});

t('a gateway flushing yesterday\'s backlog: the open feed shows what a reload shows, newest received first', async (ctx) => {
  const page = await signIn(ctx);
  const feed = page.getByRole('list', { name: 'Live analysis events' });
  const now = analysisFlow(GW, { machineId: 'TRUTH-NOW', registered: null });
  await send(ctx, now);
  await feed.locator(`li[data-event-id="${now.at(-1)!.id}"]`).waitFor({ timeout: WAIT });
  // Another gateway back after a day offline sends its outbox: 25 analyses from yesterday, received now.
  const late = await connectGateway(ctx.relay.mqttUrl, 'gw-truth-late', await addGateway(ctx.relay, 'gw-truth-late', 'tenant-truth'));
  const backlog = Array.from({ length: 25 }, (_, i) => analysisFlow('gw-truth-late', { machineId: 'TRUTH-LATE', registered: null, at: new Date(Date.now() - 86_400_000 + i * 60_000) })).flat();
  const last = backlog.at(-1)!;
  // The open page reloads its stored events once the last analysis is stored: wait for that answer.
  const reloaded = page.waitForResponse(async (r) => r.url().endsWith('/graphql') && (r.request().postData() ?? '').includes('recentEvents') && (await r.text()).includes(last.id), { timeout: WAIT });
  try {
    for (const e of backlog) assert.is(await publishEvent(late, 'gw-truth-late', e), 'ok');
  } finally {
    late.end(true);
  }
  await reloaded;
  await page.evaluate('new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50)))');
  const open = await feedIds(page);
  const fresh = await signIn(ctx);
  await fresh.getByRole('list', { name: 'Live analysis events' }).locator(`li[data-event-id="${last.id}"]`).waitFor({ timeout: WAIT });
  assert.equal(open, await feedIds(fresh), 'the open page and a reloaded one list the same events in the same order');
  assert.is(open[0], last.id, 'the last received on top, with its own (yesterday\'s) time');
  assert.match(await page.getByRole('region', { name: 'Live feed', exact: true }).innerText(), /Newest received first/);
  await page.close();
  await fresh.close();
});

t('phone (375 px): every number of the accuracy table is on screen, named with what it counts', async (ctx) => {
  const d = labelled({ label: 'crane', previousLabel: 'crane', kind: 'confirmation' });
  await send(ctx, [envelope(GW, 'recognition.labelled', d, { id: d.correctionId, time: d.at })]);
  const page = await signIn(ctx, { width: 375, height: 812 });
  const row = page.getByRole('region', { name: 'Real-world accuracy', exact: true }).locator('tr[data-type="crane"]');
  await row.waitFor({ timeout: WAIT });
  const names: string[] = [];
  for (const cell of await row.getByRole('cell').all()) {
    const box = await cell.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 375, `${await cell.getAttribute('data-label')}: ${JSON.stringify(box)}`);
    names.push((await cell.getAttribute('data-label')) ?? '');
  }
  assert.equal(names, ['Confirmed: gateway said this type, technician agreed', 'Corrected away: gateway said this type, technician chose another', 'Corrected to: technician chose this type, gateway said another', 'Accuracy: confirmed ÷ (confirmed + corrected away)']);
  assert.is(await page.evaluate<string>(`getComputedStyle(document.querySelector('tr[data-type="crane"] td'), '::before').content`), `"${names[0]}"`, 'the name is shown beside the number');
  assert.is(await page.evaluate<number>('document.documentElement.scrollWidth'), 375, 'no sideways scrolling of the page');
  await row.scrollIntoViewIfNeeded();
  await page.screenshot({ path: shot('accuracy-cards-375x812.png') });
  await page.close();
});

t.run();
