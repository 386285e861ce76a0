import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import type { Agent } from '@tu/agent';
import { ERROR_CODES } from '@tu/shared';
import { inject, signedInUrl, startTestAgent, tmpDir } from './support/harness.js';
import { ensureBuilt, launchChromium } from './support/browser.js';
import { REPO_ROOT } from './support/real.js';

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

t('an API client gets the same refusal as status and code', async (ctx) => {
  const res = await inject(ctx.agent, { method: 'POST', url: '/api/v1/images', payload: 'hello', headers: { 'content-type': 'text/plain' } });
  assert.is(res.statusCode, 415);
  assert.equal(res.json(), { error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: ERROR_CODES.UNSUPPORTED_MEDIA_TYPE.message } });
});

t.run();
