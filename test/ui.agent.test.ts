import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Locator, Page } from 'playwright-core';
import type { Agent } from '@tu/agent';
import { inject, signedInUrl, tmpDir } from './support/harness.js';
import { ensureBuilt, launchChromium, screenshotPath } from './support/browser.js';
import { multipart, photo, REPO_ROOT, startRealAgent } from './support/real.js';

type Ctx = { agent: Agent; browser: Browser };
const t = suite<Ctx>('ui: technician UI in Chromium against a real agent (real services and model)');

// A photo with EXIF GPS, capture time and camera: the result card shows all of it.
const GPS_PHOTO = photo('exif_gps/exifsamples_DSCN0010.jpg');
const EXCAVATOR = photo(`excavator/${fs.readdirSync(photo('excavator')).filter((f) => f.endsWith('.jpg')).sort()[0]}`);
// A class the plain backbone knows without a trained head (test/ui.dashboard.test.ts uses it too).
const FORKLIFT = photo('forklift/imagenet_n03384352_forklift.jpg');
// A photo of several MB and thousands of pixels a side.
const BIG = photo('tractor/rp_tractor.jpg');
const WAIT = 30_000;

t.before(async (ctx) => {
  await ensureBuilt(path.join(REPO_ROOT, 'agent/ui'));
  ctx.agent = await startRealAgent({ 'limits.maxUploadBytes': 8 * 1024 * 1024 });
  ctx.browser = await launchChromium();
});
t.after(async (ctx) => {
  await ctx.browser?.close();
  await ctx.agent?.stop();
});

const openUi = async (ctx: Ctx, viewport: { width: number; height: number }): Promise<Page> => {
  // en-US: assertions read its digit grouping ("5,174"); the UI uses the browser's own.
  const page = await ctx.browser.newPage({ viewport, locale: 'en-US' });
  await page.goto(await signedInUrl(ctx.agent));
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: WAIT });
  return page;
};

t('a photo uploaded through the file input: live timeline to completed, result card with type, verdict, GPS link', async (ctx) => {
  const page = await openUi(ctx, { width: 1280, height: 800 });
  await page.getByLabel('Choose photos').setInputFiles(GPS_PHOTO);
  const card = page.getByRole('article', { name: /exifsamples_DSCN0010\.jpg/ });
  await card.getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  const timeline = card.getByRole('list', { name: 'Timeline' });
  assert.is(await timeline.getAttribute('aria-live'), 'polite');
  const items = await timeline.getByRole('listitem').allInnerTexts();
  const joined = items.join('\n');
  // The live feed names the plan (and a wait before the start, e.g. for the arrival's commit); a card filled from the status route (feed connected late) says only that it started.
  for (const want of [/Photo stored/, /Analysis started( after [\d.]+ m?s in the queue)?(: Recognition and Metadata \(side by side\), then Comparison)?$/m, /Recognition done: \d/, /Comparison done: \d/, /Metadata done: \d/, /Completed: \d/]) assert.match(joined, want);
  const type = await card.getByTestId('machine-type').innerText();
  // A recognised type shows its confidence; 'unknown' never does (it would read as certainty).
  if (/^unknown/i.test(type)) assert.not.match(type, /confidence/, type);
  else assert.match(type, /confidence/, type);
  // No machine is registered yet: the verdict says what cannot be told (the dashboard's words, ui.dashboard-truth).
  assert.match(await card.getByTestId('comparison').innerText(), /^Cannot tell whether it is the registered machine\n/);
  const map = card.getByRole('link', { name: /map/ });
  assert.match((await map.getAttribute('href')) ?? '', /^https:\/\/www\.openstreetmap\.org\/\?mlat=-?\d/);
  // The bus carries no thumbnail (docs/messages.md): the live feed put it into analysis.completed from the blob store.
  const thumb = card.getByRole('img', { name: /Thumbnail/ });
  assert.ok(await thumb.isVisible());
  assert.ok(await thumb.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth > 0), 'the thumbnail decodes');
  // history lists it (no reload)
  await page.locator('#history').getByRole('button', { name: /Open analysis .*\(completed/ }).first().waitFor({ timeout: WAIT });
  await page.screenshot({ path: screenshotPath('agent-ui-laptop-1280x800.png'), fullPage: false });
  await page.screenshot({ path: screenshotPath('agent-ui-laptop-full.png'), fullPage: true });
  // After a reload the card comes from GET /api/v1/analyses/:id: the status route puts the thumbnail in.
  await page.reload();
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: WAIT });
  await page.locator('#history').getByRole('button', { name: /Open analysis .*\(completed/ }).first().click();
  const reloaded = page.getByRole('img', { name: /Thumbnail/ }).first();
  await reloaded.waitFor({ timeout: WAIT });
  assert.ok(await reloaded.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth > 0), 'the reopened analysis shows its thumbnail');
  await page.screenshot({ path: screenshotPath('agent-ui-laptop-reopened.png'), fullPage: false });
  await page.close();
});

t('a text file renamed .jpg is refused with the API error message', async (ctx) => {
  const page = await openUi(ctx, { width: 390, height: 844 });
  const fake = path.join(tmpDir('tu-ui-'), 'not-a-photo.jpg');
  fs.writeFileSync(fake, 'this is a text file, not a JPEG\n'.repeat(20));
  await page.getByLabel('Choose photos').setInputFiles(fake);
  const card = page.getByRole('article', { name: /not-a-photo\.jpg/ });
  const alert = card.getByRole('alert');
  await alert.waitFor({ timeout: WAIT });
  const text = await alert.innerText();
  assert.match(text, /Not accepted:/);
  assert.match(text, /NOT_AN_IMAGE/);
  assert.match(text, /not a JPEG, PNG or WebP/);
  // And a real photo on the phone viewport, through the camera input.
  await page.getByLabel('Take photo').setInputFiles(EXCAVATOR);
  await page.getByRole('article', { name: new RegExp(path.basename(EXCAVATOR).replace(/\./g, '\\.')) }).getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  await page.screenshot({ path: screenshotPath('agent-ui-phone-390x844.png') });
  await page.screenshot({ path: screenshotPath('agent-ui-phone-full.png'), fullPage: true });
  await page.close();
});

t('a photo of several MB: its size in MB on the timeline, its pixels grouped (one number rule, format.ts num)', async (ctx) => {
  const page = await openUi(ctx, { width: 375, height: 812 });
  await page.getByLabel('Choose photos').setInputFiles(BIG);
  const card = page.getByRole('article', { name: /rp_tractor\.jpg/ });
  await card.getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  const size = fs.statSync(BIG).size / 1024 / 1024;
  // "Photo stored (3850 KB)" was a count of four digits, unlike the same size in the health panel.
  await card.getByRole('list', { name: 'Timeline' }).getByText(`Photo stored (${size.toFixed(1)} MB)`).waitFor({ timeout: WAIT });
  const { width, height } = (await inject(ctx.agent, { method: 'GET', url: `/api/v1/analyses/${(await card.getAttribute('id'))?.slice(2) ?? ''}` })).json<{ results: { metadata: { quality: { width: number; height: number } } } }>().results.metadata.quality;
  assert.ok(width >= 1000 && height >= 1000, `precondition: a photo of over 1000 pixels a side (${width}×${height})`);
  const grouped = (n: number) => n.toLocaleString('en-US');
  assert.match(await card.innerText(), new RegExp(`${grouped(width)} × ${grouped(height)} pixels \\(\\d+\\.\\d MP\\)`));
  await page.close();
});

// A Canon photo: EXIF time without a zone, and a model that repeats the make ("Canon" + "Canon EOS 600D").
const CANON_PHOTO = photo('exif_gps/exifr_IMG_5910.jpg');

// The card of one Canon upload, checked item by item by the next tests (one upload, several facts).
let canon: { page: Page; card: Locator } | undefined;
const canonCard = async (ctx: Ctx): Promise<Locator> => {
  if (canon) return canon.card;
  const page = await openUi(ctx, { width: 1280, height: 800 });
  await page.getByLabel('Choose photos').setInputFiles(CANON_PHOTO);
  const card = page.getByRole('article', { name: /exifr_IMG_5910\.jpg/ });
  await card.getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  canon = { page, card };
  return card;
};

t('result card: an EXIF time without a zone is shown as camera local time, zone unknown', async (ctx) => {
  const card = await canonCard(ctx);
  // EXIF DateTimeOriginal 2015:06:11 10:29:26 with no zone: not dropped, not shifted into this browser's zone.
  const captured = await card.getByTestId('capture-time').innerText();
  assert.is(captured.split('\n')[0], '2015-06-11 10:29 (camera local time, zone unknown)');
  // Taken in 2015, so the record's sighting is the latest moment that time can be (read at UTC-12,
  // record.lastSeenAtSource capture-time-latest), not the upload: said, not dropped.
  assert.match(captured.split('\n')[1] ?? '', /^The photo gives no zone for this time and was taken more than a day before its upload: the machine record dates the sighting at the latest moment it can have been taken, Jun 1[12], 2015, .+\.$/);
});

t('result card: the camera is "Canon EOS 600D", not "Canon Canon EOS 600D"', async (ctx) => {
  assert.is(await (await canonCard(ctx)).getByTestId('camera').innerText(), 'Canon EOS 600D');
});

t("result card: the photo's GPS altitude is shown with its unit, not dropped", async (ctx) => {
  const card = await canonCard(ctx);
  const id = (await card.getAttribute('id'))?.slice(2) ?? '';
  const gps = (await inject(ctx.agent, { method: 'GET', url: `/api/v1/analyses/${id}` })).json<{ results: { metadata: { exif: { gps: { latitude: number; longitude: number; altitude?: number } } } } }>().results.metadata.exif.gps;
  assert.ok(gps.altitude !== undefined, 'precondition: the photo has a GPS altitude');
  // The map link's own line (dd), whatever else the card says.
  assert.is(await card.getByRole('link', { name: /\(map\)/ }).locator('xpath=..').innerText(), `${gps.latitude.toFixed(5)}, ${gps.longitude.toFixed(5)} (map), ${Math.round(gps.altitude)} m above sea level`);
});

t('result card: no confidence anywhere next to an unknown type', async (ctx) => {
  const card = await canonCard(ctx);
  // No head in this agent: 'unknown'; no percentage on the card reads as confidence in it.
  assert.match(await card.getByTestId('machine-type').innerText(), /^unknown/i);
  const text = await card.getByRole('region', { name: 'Result' }).innerText();
  assert.not.match(text, /confidence/i, text);
});

t('result card: one duration per step, saying what it measures', async (ctx) => {
  const whole = await (await canonCard(ctx)).innerText();
  // Not the service's time on the timeline and the orchestrator's, different, in a second list.
  for (const step of ['Recognition', 'Comparison', 'Metadata']) {
    const durations = whole.match(new RegExp(`${step}[^\\n]*?\\d+ ms[^\\n·]*`, 'g')) ?? [];
    assert.is(durations.length, 1, `${step}: ${durations.join(' | ')}`);
    assert.match(durations[0] ?? '', /of work in the service/);
  }
});

t('result card: the similarity to the closest earlier photo is stated once', async (ctx) => {
  const card = await canonCard(ctx);
  const id = (await card.getAttribute('id'))?.slice(2) ?? '';
  const view = (await inject(ctx.agent, { method: 'GET', url: `/api/v1/analyses/${id}` })).json<{ results: { comparison: { bestMatch: unknown } } }>();
  assert.ok(view.results.comparison.bestMatch, 'precondition: an earlier photo (the first test\'s) is the best match');
  const comparison = await card.getByTestId('comparison').innerText();
  assert.is(comparison.match(/similar/gi)?.length, 1, comparison);
  await canon?.page.close();
});

t('recent analyses show the file name and the recognised type; the API keeps the name, validated', async (ctx) => {
  const page = await openUi(ctx, { width: 1280, height: 800 });
  const history = page.locator('#history');
  // Earlier tests uploaded these through the UI: the list (loaded fresh) names them.
  const item = history.getByRole('button', { name: /Open analysis of exifr_IMG_5910\.jpg: type unknown \(completed/ });
  await item.waitFor({ timeout: WAIT });
  assert.match(await item.innerText(), /exifr_IMG_5910\.jpg[\s\S]*type unknown/);
  // Opened from the history (a fresh page: no live events), the card is named by the file and its
  // step durations are the orchestrator's, saying so, one per step.
  await item.click();
  const card = page.getByRole('article', { name: /exifr_IMG_5910\.jpg: Completed/ });
  await card.getByTestId('capture-time').waitFor({ timeout: WAIT });
  const whole = await card.innerText();
  for (const step of ['Recognition', 'Comparison', 'Metadata']) {
    const durations = whole.match(new RegExp(`${step}[^\\n]*?\\d+ ms[^\\n·]*`, 'g')) ?? [];
    assert.is(durations.length, 1, `${step}: ${durations.join(' | ')}`);
    assert.match(durations[0] ?? '', /from request to result/);
  }
  const list = (await inject(ctx.agent, { method: 'GET', url: '/api/v1/analyses?limit=50' })).json<{ analyses: { fileName?: string; machineType?: string }[] }>().analyses;
  assert.ok(list.some((a) => a.fileName === 'exifr_IMG_5910.jpg' && a.machineType === 'unknown'), JSON.stringify(list));
  // The header carries any name (percent-encoded UTF-8); multipart keeps its filename.
  const bytes = fs.readFileSync(EXCAVATOR);
  const post = (headers: Record<string, string>, payload: Buffer = bytes) => inject(ctx.agent, { method: 'POST', url: '/api/v1/images', headers: { 'content-type': 'image/jpeg', ...headers }, payload });
  const named = await post({ 'x-file-name': encodeURIComponent('Bagger Süd 3.jpg') });
  assert.is(named.statusCode, 202, named.body);
  const mp = multipart('image', bytes, 'image/jpeg', 'plate.jpg');
  const viaForm = await inject(ctx.agent, { method: 'POST', url: '/api/v1/images', headers: mp.headers, payload: mp.payload });
  assert.is(viaForm.statusCode, 202, viaForm.body);
  for (const [res, name] of [[named, 'Bagger Süd 3.jpg'], [viaForm, 'plate.jpg']] as const) {
    const url = `/api/v1/analyses/${res.json<{ analysisId: string }>().analysisId}`;
    let v = await inject(ctx.agent, { method: 'GET', url });
    for (let i = 0; i < 100 && v.statusCode === 404; i++) v = await new Promise((ok) => setTimeout(ok, 20)).then(() => inject(ctx.agent, { method: 'GET', url }));
    assert.is(v.json<{ fileName?: string }>().fileName, name);
  }
  // A name that is a path, has control characters or text-direction marks (shown as another
  // name: "photo\u202Egpj.exe" reads "photoexe.jpg"), is too long or badly encoded is refused, nothing stored.
  for (const bad of [encodeURIComponent('../../etc/passwd'), encodeURIComponent('a\u0007b.jpg'), encodeURIComponent('photo\u202Egpj.exe'), 'x'.repeat(256), '%E0%A4%A']) {
    const r = await post({ 'x-file-name': bad });
    assert.is(r.statusCode, 400, bad);
    assert.is(r.json<{ error: { code: string } }>().error.code, 'INVALID_REQUEST');
  }
  await page.close();
});

t('phone 390×844: after an upload the result is on screen without scrolling', async (ctx) => {
  const page = await openUi(ctx, { width: 390, height: 844 });
  await page.getByLabel('Take photo').setInputFiles(GPS_PHOTO);
  const card = page.getByRole('article', { name: /exifsamples_DSCN0010\.jpg/ }).first();
  await card.getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  await card.getByTestId('machine-type').waitFor({ timeout: WAIT });
  await page.waitForTimeout(200); // let the reveal settle
  for (const el of [card.getByRole('heading', { name: /exifsamples_DSCN0010\.jpg/ }), card.getByTestId('machine-type')]) {
    const box = await el.boundingBox();
    assert.ok(box && box.y >= 0 && box.y + box.height <= 844, `in the viewport: ${JSON.stringify(box)}`);
  }
  await page.screenshot({ path: screenshotPath('agent-ui-phone-result-390x844.png') });
  await page.close();
});

t('keyboard: skip link, Tab reaches the upload controls; controls have labels; focus is visible', async (ctx) => {
  const page = await openUi(ctx, { width: 1280, height: 800 });
  await page.keyboard.press('Tab');
  // (evaluated in the page: strings, as the test tsconfig has no DOM lib)
  const first = await page.evaluate<string>("document.activeElement?.textContent ?? ''");
  assert.is(first, 'Skip to photo upload');
  let reached = '';
  for (let i = 0; i < 12 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate<string>(
      "(() => { const el = document.activeElement; return el instanceof HTMLInputElement && el.type === 'file' ? (el.labels?.[0]?.textContent?.trim() ?? '?') : ''; })()",
    );
  }
  assert.is(reached, 'Take photo');
  // the focused control's label shows a focus ring
  const outline = await page.evaluate<string>("getComputedStyle(document.activeElement.closest('label')).outlineStyle");
  assert.is(outline, 'solid');
  for (const name of ['Machine type', 'Brand', 'Model', 'Serial number', 'Name']) assert.is(await page.getByLabel(name, { exact: true }).count(), 1, name);
  assert.is(await page.getByRole('button', { name: 'Save machine' }).count(), 1);
  assert.is(await page.getByRole('navigation', { name: 'Sections' }).getByRole('link').count(), 4);
  await page.close();
});

t('laptop: each section link brings its heading into view below the sticky header, not under it', async (ctx) => {
  const page = await openUi(ctx, { width: 1366, height: 800 });
  const nav = page.getByRole('navigation', { name: 'Sections' });
  for (const [link, heading] of [['Gateway', 'Gateway health'], ['History', 'Recent analyses'], ['Machine', 'Registered machine'], ['Photo', 'Photo of the machine']] as const) {
    await nav.getByRole('link', { name: link }).click();
    await page.waitForTimeout(200);
    const header = await page.locator('header.top').boundingBox();
    const h = await page.getByRole('heading', { name: heading, exact: true }).boundingBox();
    assert.ok(header && h && h.y >= header.y + header.height - 1 && h.y + h.height <= 800, `${link}: heading at ${h?.y}, the sticky header ends at ${header ? header.y + header.height : '?'}`);
  }
  await page.close();
});

t('register the machine and a reference photo through the form', async (ctx) => {
  const page = await openUi(ctx, { width: 390, height: 844 });
  await page.getByLabel('Machine type', { exact: true }).fill('excavator');
  await page.getByLabel('Brand', { exact: true }).fill('Liebherr');
  await page.getByLabel('Model', { exact: true }).fill('R 926');
  await page.getByLabel('Serial number', { exact: true }).fill('SN-0042');
  await page.getByLabel('Name', { exact: true }).fill('Site 4 excavator');
  await page.getByRole('button', { name: 'Save machine' }).click();
  await page.getByText('Machine saved.').waitFor({ timeout: WAIT });
  const res = await inject(ctx.agent, { method: 'GET', url: '/api/v1/machine' });
  const m = res.json<{ machine: Record<string, string> }>().machine;
  assert.equal({ type: m['type'], brand: m['brand'], model: m['model'], serialNumber: m['serialNumber'], name: m['name'] }, {
    type: 'excavator',
    brand: 'Liebherr',
    model: 'R 926',
    serialNumber: 'SN-0042',
    name: 'Site 4 excavator',
  });
  await page.getByLabel('Add reference photos').setInputFiles(EXCAVATOR);
  await page.getByText(/Reference photo .* added \(1 in total\)/).waitFor({ timeout: WAIT });
  await page.getByText('1 reference photo stored.').waitFor({ timeout: WAIT });
  // health panel shows the services and the model
  const health = page.locator('#health');
  await health.getByText(/ on (onnxruntime|wasm)/).waitFor({ timeout: WAIT });
  // This agent has no trained head: the banner tells the technician what that means.
  const banner = page.locator('.banner[role="alert"]');
  await banner.getByText(/cannot tell excavators, loaders, dozers/).waitFor({ timeout: WAIT });
  assert.match(await banner.innerText(), /Ask your administrator to install the default head/);
  await page.locator('#machine').screenshot({ path: screenshotPath('agent-ui-phone-machine.png') });
  await page.close();
});

t('adding a reference photo when the machine cannot be reloaded: says the count is from before, and Retry brings the new count', async (ctx) => {
  const page = await openUi(ctx, { width: 390, height: 844 });
  const machine = page.locator('#machine');
  const before = (await inject(ctx.agent, { method: 'GET', url: '/api/v1/machine' })).json<{ references: unknown[] }>().references.length;
  await machine.getByText(`${before} reference photo${before === 1 ? '' : 's'} stored.`).waitFor({ timeout: WAIT });
  // The gateway stores the photo, then its machine cannot be read back.
  const url = '**/api/v1/machine';
  await page.route(url, (route) =>
    route.request().method() === 'GET' ? route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'UNAVAILABLE', message: 'The machine store is busy' } }) }) : route.continue(),
  );
  const second = photo(`excavator/${fs.readdirSync(photo('excavator')).filter((f) => f.endsWith('.jpg')).sort()[1]}`);
  await page.getByLabel('Add reference photos').setInputFiles(second);
  const alert = machine.getByTestId('machine-reload-error');
  await alert.waitFor({ timeout: WAIT });
  assert.match(await alert.innerText(), /Could not reload the machine after adding reference photos: The machine store is busy\. The count below is from before they were added\./);
  assert.match(await machine.innerText(), new RegExp(`${before} reference photos? stored \\(before the photos just added\\)\\.`));
  await machine.screenshot({ path: screenshotPath('agent-ui-phone-machine-reload-failed.png') });
  await page.unroute(url);
  await alert.getByRole('button', { name: 'Retry' }).click();
  await machine.getByText(`${before + 1} reference photos stored.`).waitFor({ timeout: WAIT });
  assert.is(await machine.getByTestId('machine-reload-error').count(), 0);
  await page.close();
});

t("several reference photos at once: each one's outcome stays, a refusal is not replaced by the next photo's success", async (ctx) => {
  const page = await openUi(ctx, { width: 390, height: 844 });
  const machine = page.locator('#machine');
  const broken = path.join(tmpDir('tu-ref-broken-'), 'broken.jpg');
  fs.writeFileSync(broken, 'not a photo at all');
  const good = photo(`excavator/${fs.readdirSync(photo('excavator')).filter((f) => f.endsWith('.jpg')).sort()[2]}`);
  await page.getByLabel('Add reference photos').setInputFiles([broken, good]);
  const results = machine.getByTestId('reference-results').getByRole('listitem');
  await results.nth(1).waitFor({ timeout: WAIT });
  assert.match(await results.nth(0).innerText(), /^Reference photo broken\.jpg refused: /);
  assert.match(await results.nth(1).innerText(), new RegExp(`^Reference photo ${path.basename(good).replace(/[.()]/g, '\\$&')} (added|replaced an older one)`));
  await page.close();
});

t('a label saved on a gateway without a cloud uplink does not promise to reach the office', async (ctx) => {
  const health = (await inject(ctx.agent, { method: 'GET', url: '/api/v1/health' })).json<{ uplink: { state: string } }>();
  assert.is(health.uplink.state, 'disabled', 'precondition: this agent has no uplink.url');
  const page = await openUi(ctx, { width: 375, height: 812 });
  await page.locator('#history').getByRole('button', { name: /Open analysis .*\(completed/ }).first().click();
  const teach = page.getByRole('region', { name: 'Teach the gateway' }).first();
  await teach.waitFor({ timeout: WAIT });
  await teach.getByLabel('Your name').fill('Ben');
  await teach.getByLabel(/It is:/).selectOption('excavator');
  await teach.getByRole('button', { name: 'Save this type' }).click();
  const stored = teach.getByTestId('teach-stored');
  await stored.waitFor({ timeout: WAIT });
  const text = await stored.innerText();
  assert.match(text, /It stays on this gateway: its cloud uplink is off \(uplink\.url is not configured\), so nothing is sent to the office\./, text);
  assert.not.match(text, /reaches the office/, text);
  // The health panel says the same of the uplink, not the bare word 'disabled'.
  assert.is(await page.getByTestId('uplink-detail').innerText(), 'off: results and labels stay on this gateway, nothing is sent to the office (uplink.url is not configured).');
  await page.close();
});

t('the registered machine cannot be loaded: the form stays locked (saving it empty would erase the registration) and Retry loads it', async (ctx) => {
  const registered = { type: 'excavator', brand: 'Liebherr', model: 'R 926', serialNumber: 'SN-0042', name: 'Site 4 excavator' };
  const put = await inject(ctx.agent, { method: 'PUT', url: '/api/v1/machine', payload: registered });
  assert.ok(put.statusCode < 300, put.body);
  const page = await ctx.browser.newPage({ viewport: { width: 375, height: 812 } });
  // The site Wi-Fi drops the page's first read of the machine (the rest of the page loads).
  let dropped = 0;
  await page.route('**/api/v1/machine', (route) => (route.request().method() === 'GET' && dropped++ === 0 ? route.abort('internetdisconnected') : route.continue()));
  await page.goto(await signedInUrl(ctx.agent));
  const machine = page.locator('#machine');
  const alert = machine.getByTestId('machine-load-error');
  await alert.waitFor({ timeout: WAIT });
  assert.match(await alert.innerText(), /Could not load the registered machine: The gateway does not answer\. .*saving cannot erase the registration/);
  const save = machine.getByRole('button', { name: 'Save machine' });
  assert.ok(await save.isDisabled(), 'Save is locked while the registration is unknown');
  assert.ok(await machine.getByLabel('Brand', { exact: true }).isDisabled());
  await machine.getByLabel('Serial number', { exact: true }).press('Enter').catch(() => undefined);
  const kept = (await inject(ctx.agent, { method: 'GET', url: '/api/v1/machine' })).json<{ machine: Record<string, string> }>().machine;
  assert.equal(kept, registered, 'the registration is untouched');
  await machine.screenshot({ path: screenshotPath('agent-ui-phone-machine-load-failed.png') });
  await alert.getByRole('button', { name: 'Retry' }).click();
  await machine.getByLabel('Brand', { exact: true }).and(page.locator(':enabled')).waitFor({ timeout: WAIT });
  assert.is(await machine.getByLabel('Serial number', { exact: true }).inputValue(), 'SN-0042');
  assert.ok(await save.isEnabled());
  assert.is(await machine.getByTestId('machine-load-error').count(), 0);
  await page.close();
});

t("a forklift photo on a machine registered as an excavator: the verdict's reason says its number is the confidence", async (ctx) => {
  const put = await inject(ctx.agent, { method: 'PUT', url: '/api/v1/machine', payload: { type: 'excavator', name: 'Site 4 excavator' } });
  assert.ok(put.statusCode < 300, put.body);
  const page = await openUi(ctx, { width: 1280, height: 800 });
  await page.getByLabel('Choose photos').setInputFiles(FORKLIFT);
  const card = page.getByRole('article', { name: /imagenet_n03384352_forklift\.jpg/ });
  await card.getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  const comparison = await card.getByTestId('comparison').innerText();
  assert.match(comparison, /Does NOT match/, comparison);
  // "forklift (1.00)" beside "100 % confidence" was a bare number: which of the photo's numbers is it?
  assert.match(comparison, /recognised type forklift \(confidence \d\.\d\d\) differs from registered excavator/, comparison);
  await card.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshotPath('agent-ui-verdict-confidence-1280x800.png') });
  await page.close();
});

t.run();
