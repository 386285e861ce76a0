/**
 * The technician UI and its token (project issue 8, finding 6), in Chromium against a real
 * agent: opened as `/#token=<t>` it is signed in (the token leaves the address bar) and can
 * upload; without a token it shows the sign-in prompt saying where to get one; a token the
 * gateway refuses (another gateway) is refused with the gateway's reason; a token lacking a
 * role shows the refusal where it happened.
 */
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser, Page } from 'playwright-core';
import type { Agent } from '@tu/agent';
import type { BusClient } from '@tu/shared';
import { signedInUrl, startAllHandlers, startTestAgent, techToken } from './support/harness.js';
import { ensureBuilt, launchChromium, screenshotPath } from './support/browser.js';
import { photo, REPO_ROOT } from './support/real.js';

type Ctx = { agent: Agent; handlers: BusClient[]; browser: Browser };
const t = suite<Ctx>('ui: sign-in with a technician token (Chromium, real agent)');
const WAIT = 30_000;
const FORKLIFT = photo('forklift/imagenet_n03384352_forklift.jpg');

t.before(async (ctx) => {
  await ensureBuilt(path.join(REPO_ROOT, 'agent/ui'));
  ctx.agent = await startTestAgent();
  ctx.handlers = await startAllHandlers(ctx.agent);
  ctx.browser = await launchChromium();
});
t.after(async (ctx) => {
  await ctx.browser?.close();
  for (const h of ctx.handlers ?? []) await h.close();
  await ctx.agent?.stop();
});

const newPage = (ctx: Ctx): Promise<Page> => ctx.browser.newPage({ viewport: { width: 390, height: 844 } });

t('opened as /#token=<t>: signed in, the token leaves the address bar, a photo uploads to completed', async (ctx) => {
  const page = await newPage(ctx);
  await page.goto(await signedInUrl(ctx.agent));
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: WAIT });
  assert.not.match(page.url(), 'token', 'the token is not left in the address bar or history');
  const session = await page.getByLabel('Signed in').innerText();
  assert.match(session, 'test-technician');
  assert.match(session, 'upload');
  await page.getByLabel('Choose photos').setInputFiles(FORKLIFT);
  await page.getByRole('article', { name: /imagenet_n03384352_forklift\.jpg/ }).getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  // A reload keeps the tab signed in (sessionStorage), without the token in the URL.
  await page.reload();
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: WAIT });
  // Signing out returns to the prompt.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to this gateway' }).waitFor({ timeout: WAIT });
  await page.close();
});

t('without a token: the sign-in prompt says where to get one and what roles allow; a pasted token signs in', async (ctx) => {
  const page = await newPage(ctx);
  await page.goto(ctx.agent.http.url);
  await page.getByRole('heading', { name: 'Sign in to this gateway' }).waitFor({ timeout: WAIT });
  const text = await page.locator('main').innerText();
  for (const want of ['tu-agent token', 'technicians token', 'upload photos for analysis', 'register the machine', 'confirm or correct']) assert.match(text, want);
  assert.is(await page.getByLabel('Choose photos').count(), 0, 'nothing of the app without a token');
  await page.screenshot({ path: screenshotPath('agent-ui-sign-in-390x844.png'), fullPage: true });
  await page.getByLabel(/Technician token/).fill(await techToken(ctx.agent, ['view']));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: WAIT });
  assert.match(await page.getByLabel('Signed in').innerText(), 'view');
  // A view-only technician who tries to upload sees the gateway's refusal on the card.
  await page.getByLabel('Choose photos').setInputFiles(FORKLIFT);
  const alert = page.getByRole('article', { name: /forklift/ }).getByRole('alert');
  await alert.waitFor({ timeout: WAIT });
  assert.match(await alert.innerText(), '"upload" role');
  await page.close();
});

t('a token for another gateway: refused at sign-in with the gateway\'s reason; opened as a link, the prompt says why', async (ctx) => {
  const other = await techToken({ config: { ...ctx.agent.config, gatewayId: 'gw-elsewhere' } });
  const page = await newPage(ctx);
  await page.goto(ctx.agent.http.url);
  await page.getByLabel(/Technician token/).fill(other);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(/made for another gateway/).waitFor({ timeout: WAIT });
  // The link opened in the same tab (only the fragment changes: no reload). The prompt's banner
  // (not the paste's error above, which a new prompt does not keep) gives the gateway's reason.
  await page.goto(`${ctx.agent.http.url}/#token=${other}`);
  await page.locator('.banner[role="alert"]').filter({ hasText: /another gateway|no longer accepts/ }).waitFor({ timeout: WAIT });
  await page.getByRole('heading', { name: 'Sign in to this gateway' }).waitFor({ timeout: WAIT });
  assert.not.match(page.url(), 'token', 'the refused token is not left in the address bar');
  await page.close();
});

t('a #token= link opened in a tab that shows the prompt (or another session) signs in with it, without a reload', async (ctx) => {
  const page = await newPage(ctx);
  await page.goto(ctx.agent.http.url);
  await page.getByRole('heading', { name: 'Sign in to this gateway' }).waitFor({ timeout: WAIT });
  // Pasted into the address bar of the same tab: only the fragment changes, the page is not reloaded.
  await page.goto(`${ctx.agent.http.url}/#token=${await techToken(ctx.agent, ['view'], { sub: 'first-tech' })}`);
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: WAIT });
  assert.match(await page.getByLabel('Signed in').innerText(), 'first-tech');
  assert.not.match(page.url(), 'token', 'the token leaves the address bar');
  // A colleague's link in the same tab: their session replaces the first.
  await page.goto(`${ctx.agent.http.url}/#token=${await techToken(ctx.agent, ['view', 'upload'], { sub: 'second-tech' })}`);
  await page.getByLabel('Signed in').filter({ hasText: 'second-tech' }).waitFor({ timeout: WAIT });
  assert.not.match(page.url(), 'token');
  // The section links (#history, …) are fragments too: they do not sign anyone out.
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'History' }).click();
  assert.match(await page.getByLabel('Signed in').innerText(), 'second-tech');
  await page.close();
});

t.run();
