import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import type { Agent } from '@tu/agent';
import { tmpDir } from './support/harness.js';
import { ensureBuilt, launchChromium, screenshotPath } from './support/browser.js';
import { photo, REPO_ROOT, startRealAgent } from './support/real.js';

type Ctx = { agent: Agent; browser: Browser };
const t = suite<Ctx>('ui: technician UI in Chromium against a real agent (real services and model)');

// A photo with EXIF GPS, capture time and camera: the result card shows all of it.
const GPS_PHOTO = photo('exif_gps/exifsamples_DSCN0010.jpg');
const EXCAVATOR = photo(`excavator/${fs.readdirSync(photo('excavator')).filter((f) => f.endsWith('.jpg')).sort()[0]}`);
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
  const page = await ctx.browser.newPage({ viewport });
  await page.goto(ctx.agent.http.url);
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
  for (const want of [/Photo stored/, /Analysis started/, /Recognition done in \d/, /Comparison done in \d/, /Metadata done in \d/, /Completed in \d/]) assert.match(joined, want);
  const type = await card.getByTestId('machine-type').innerText();
  // A recognised type shows its confidence; 'unknown' never does (it would read as certainty).
  if (/^unknown/i.test(type)) assert.not.match(type, /confidence/, type);
  else assert.match(type, /confidence/, type);
  assert.ok(await card.getByText(/the registered machine/).isVisible());
  const map = card.getByRole('link', { name: /map/ });
  assert.match((await map.getAttribute('href')) ?? '', /^https:\/\/www\.openstreetmap\.org\/\?mlat=-?\d/);
  assert.ok(await card.getByRole('img', { name: /Thumbnail/ }).isVisible());
  // history lists it (no reload)
  await page.locator('#history').getByRole('button', { name: /Open analysis .*\(completed/ }).first().waitFor({ timeout: WAIT });
  await page.screenshot({ path: screenshotPath('agent-ui-laptop-1280x800.png'), fullPage: false });
  await page.screenshot({ path: screenshotPath('agent-ui-laptop-full.png'), fullPage: true });
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
  assert.match(text, /refused this photo/);
  assert.match(text, /NOT_AN_IMAGE/);
  assert.match(text, /not a JPEG, PNG or WebP/);
  // And a real photo on the phone viewport, through the camera input.
  await page.getByLabel('Take photo').setInputFiles(EXCAVATOR);
  await page.getByRole('article', { name: new RegExp(path.basename(EXCAVATOR).replace(/\./g, '\\.')) }).getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  await page.screenshot({ path: screenshotPath('agent-ui-phone-390x844.png') });
  await page.screenshot({ path: screenshotPath('agent-ui-phone-full.png'), fullPage: true });
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

t('register the machine and a reference photo through the form', async (ctx) => {
  const page = await openUi(ctx, { width: 390, height: 844 });
  await page.getByLabel('Machine type', { exact: true }).fill('excavator');
  await page.getByLabel('Brand', { exact: true }).fill('Liebherr');
  await page.getByLabel('Model', { exact: true }).fill('R 926');
  await page.getByLabel('Serial number', { exact: true }).fill('SN-0042');
  await page.getByLabel('Name', { exact: true }).fill('Site 4 excavator');
  await page.getByRole('button', { name: 'Save machine' }).click();
  await page.getByText('Machine saved.').waitFor({ timeout: WAIT });
  const res = await ctx.agent.http.app.inject({ method: 'GET', url: '/api/v1/machine' });
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
  await page.getByText('1 reference photo(s) stored.').waitFor({ timeout: WAIT });
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

t.run();
