import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import type { Agent } from '@tu/agent';
import { ERROR_CODES } from '@tu/shared';
import { inject, signedInUrl, startTestAgent, tmpDir } from './support/harness.js';
import { ensureBuilt, launchChromium, screenshotPath } from './support/browser.js';
import { photo, REPO_ROOT } from './support/real.js';

type Ctx = { agent: Agent; browser: Browser; files: string };
const t = suite<Ctx>('ui: a refused upload tells the technician what to do, in their words (Chromium, real agent)');

const WAIT = 30_000;
/** API wording a technician cannot act on: field names, headers, media types, config keys. */
const API_WORDING = /multipart|field|Content-Type|image\/|limits\.|octet-stream|header/i;

t.before(async (ctx) => {
  await ensureBuilt(path.join(REPO_ROOT, 'agent/ui'));
  // The refusals happen at intake, before any analysis service: the services stay off.
  ctx.agent = await startTestAgent();
  ctx.browser = await launchChromium();
  ctx.files = tmpDir('tu-ui-upload-');
});
t.after(async (ctx) => {
  await ctx.browser?.close();
  await ctx.agent?.stop();
});

const openUi = async (ctx: Ctx): Promise<Page> => {
  const page = await ctx.browser.newPage({ viewport: { width: 390, height: 844 } });
  await page.goto(await signedInUrl(ctx.agent));
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: WAIT });
  return page;
};

/** Uploads one file through the technician's file input; resolves the refusal the card shows. */
async function refusalShown(ctx: Ctx, page: Page, name: string, content: string): Promise<string> {
  const file = path.join(ctx.files, name);
  fs.writeFileSync(file, content);
  await page.getByLabel('Choose photos').setInputFiles(file);
  const alert = page.getByRole('article', { name: new RegExp(name.replace(/\./g, '\\.')) }).getByRole('alert');
  await alert.waitFor({ timeout: WAIT });
  return alert.innerText();
}

t('a text file: "This file is not a photo", no API wording', async (ctx) => {
  const page = await openUi(ctx);
  const text = await refusalShown(ctx, page, 'notes.txt', 'shift report: bucket teeth worn\n');
  assert.ok(text.includes('This file is not a photo. Choose a JPEG, PNG or WebP image.'), text);
  assert.not.match(text, API_WORDING, text);
  // The code is still there for support (and for API clients).
  assert.match(text, /UNSUPPORTED_MEDIA_TYPE/);
  await page.close();
});

t('a text file named .jpg and an empty file: technician wording too', async (ctx) => {
  const page = await openUi(ctx);
  const renamed = await refusalShown(ctx, page, 'renamed.jpg', 'this is a text file, not a JPEG\n'.repeat(20));
  assert.ok(renamed.includes(ERROR_CODES.NOT_AN_IMAGE.message), renamed);
  assert.match(renamed, /not a photo/);
  assert.not.match(renamed, API_WORDING, renamed);
  const empty = await refusalShown(ctx, page, 'empty.png', '');
  assert.match(empty, /The file is empty\. Choose a JPEG, PNG or WebP photo/);
  assert.not.match(empty, API_WORDING, empty);
  await page.close();
});

t('a photo that did not reach the gateway (Wi-Fi drop) says "Not sent", not "Rejected", and is sent again with one tap', async (ctx) => {
  const page = await openUi(ctx);
  const name = 'site-wifi-drop.jpg';
  const file = path.join(ctx.files, name);
  fs.copyFileSync(photo('exif_gps/exifsamples_DSCN0010.jpg'), file);
  // The first upload dies on the way (the connection drops); the gateway itself is fine.
  let dropped = 0;
  await page.route('**/api/v1/images*', (route) => (route.request().method() === 'POST' && dropped++ === 0 ? route.abort('connectionreset') : route.continue()));
  await page.getByLabel('Choose photos').setInputFiles(file);
  const card = page.getByRole('article', { name: /site-wifi-drop\.jpg/ });
  const alert = card.getByRole('alert');
  await alert.waitFor({ timeout: WAIT });
  assert.match(await alert.innerText(), /^Not sent: The upload did not reach the gateway\. Check the connection and try again\. GATEWAY_UNREACHABLE/);
  assert.is(await card.locator('.badge').innerText(), 'NOT SENT');
  await card.screenshot({ path: screenshotPath('agent-ui-phone-upload-not-sent.png') });
  await card.getByRole('button', { name: 'Send again' }).click();
  await card.getByRole('list', { name: 'Timeline' }).getByText(/Photo stored/).waitFor({ timeout: WAIT });
  assert.is(await card.getByRole('alert').count(), 0);
  const list = (await inject(ctx.agent, { method: 'GET', url: '/api/v1/analyses?limit=50' })).json<{ analyses: { fileName?: string }[] }>().analyses;
  assert.is(list.filter((a) => a.fileName === name).length, 1, 'stored once, from the second attempt');
  // A photo the gateway refuses cannot be sent again as it is: no button that would only fail again.
  const refused = await refusalShown(ctx, page, 'refused.jpg', 'this is a text file, not a JPEG\n'.repeat(20));
  assert.match(refused, /^Not accepted:/, refused);
  assert.is(await page.getByRole('article', { name: /refused\.jpg/ }).getByRole('button', { name: 'Send again' }).count(), 0);
  await page.close();
});

t('an API client gets the same refusal as status and code', async (ctx) => {
  const res = await inject(ctx.agent, { method: 'POST', url: '/api/v1/images', payload: 'hello', headers: { 'content-type': 'text/plain' } });
  assert.is(res.statusCode, 415);
  assert.equal(res.json(), { error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: ERROR_CODES.UNSUPPORTED_MEDIA_TYPE.message } });
});

t.run();
