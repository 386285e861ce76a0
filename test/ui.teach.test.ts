/**
 * Technicians teach the gateway (issue 13 part 4), end to end in Chromium: a real agent (real
 * services and model) whose uplink points at a real relay. The technician confirms, then
 * corrects, the recognised type on a result card; the label reaches the relay, its GraphQL
 * typeAccuracy and the dashboard's "Real-world accuracy" panel.
 */
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Browser } from 'playwright-core';
import type { Agent } from '@tu/agent';
import type { Relay } from '@tu/relay';
import { ensureBuilt, launchChromium, screenshotPath } from './support/browser.js';
import { photo, REPO_ROOT, startRealAgent } from './support/real.js';
import { addGateway, gql, startTestRelay, tokenFor } from './support/relay.js';
import { signedInUrl } from './support/harness.js';

type Ctx = { relay: Relay; agent: Agent; browser: Browser; token: string };
const t = suite<Ctx>('ui: technician confirms / corrects a machine type; the relay and its dashboard show it');

const GW = 'gw-teach';
const FORKLIFT = photo('forklift/imagenet_n03384352_forklift.jpg');
const WAIT = 30_000;
const LAPTOP = { width: 1280, height: 800 };

t.before(async (ctx) => {
  await Promise.all([ensureBuilt(path.join(REPO_ROOT, 'agent/ui')), ensureBuilt(path.join(REPO_ROOT, 'relay/ui'))]);
  ctx.relay = await startTestRelay();
  const secret = await addGateway(ctx.relay, GW, 'tenant-teach');
  await addGateway(ctx.relay, 'gw-other', 'tenant-other');
  ctx.agent = await startRealAgent({
    gatewayId: GW,
    'uplink.url': ctx.relay.mqttUrl,
    'uplink.password': secret,
    'uplink.reconnect.initialDelayMs': 50,
    'uplink.reconnect.maxDelayMs': 200,
    'uplink.outbox.durability': 'normal',
  });
  ctx.token = await tokenFor('tenant-teach', 'office');
  ctx.browser = await launchChromium();
});
t.after(async (ctx) => {
  await ctx.browser?.close();
  await ctx.agent?.stop();
  await ctx.relay?.stop();
});

type Acc = { machineType: string; confirmed: number; correctedAway: number; correctedTo: number; accuracy: number | null };
const accuracy = async (ctx: Ctx, token = ctx.token): Promise<Acc[]> =>
  (await gql<{ typeAccuracy: Acc[] }>(ctx.relay, token, '{ typeAccuracy { machineType confirmed correctedAway correctedTo accuracy } }')).data?.typeAccuracy ?? [];
async function eventually<T>(f: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  const end = Date.now() + WAIT;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t('confirm on the result card, then correct it: stored on the gateway, counted by the relay (latest label wins), shown on the dashboard', async (ctx) => {
  const page = await ctx.browser.newPage({ viewport: LAPTOP });
  await page.goto(await signedInUrl(ctx.agent));
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: WAIT });
  await page.getByLabel('Choose photos').setInputFiles(FORKLIFT);
  const card = page.getByRole('article', { name: /imagenet_n03384352_forklift\.jpg/ });
  await card.getByText('Completed', { exact: true }).waitFor({ timeout: WAIT });
  const id = ((await card.getAttribute('id')) ?? '').replace(/^a-/, '');
  const teach = card.getByRole('region', { name: 'Teach the gateway' });
  const confirm = teach.getByRole('button', { name: 'Right: forklift' });
  await confirm.waitFor({ timeout: WAIT });

  // Without a name: refused in words, nothing stored.
  await confirm.click();
  assert.match(await teach.getByRole('alert').innerText(), /Not saved: Type your name first/);
  // The cursor is where the missing name goes (on a phone its keyboard opens), not on the button.
  assert.ok(await teach.getByLabel('Your name').evaluate((el) => el === (el.ownerDocument as unknown as { activeElement: unknown }).activeElement), 'the name field has the focus');
  assert.is(ctx.agent.teacher.current(id), undefined);

  await teach.getByLabel('Your name').fill('Anna (tech 17)');
  await confirm.click();
  const stored = teach.getByTestId('teach-stored');
  await stored.filter({ hasText: 'confirmed forklift' }).waitFor({ timeout: WAIT });
  assert.match(await stored.innerText(), /Saved on the gateway: confirmed forklift by Anna \(tech 17\), .*\. It reaches the office when the gateway is online\./);
  const confirmed = ctx.agent.teacher.current(id)!;
  assert.is(confirmed.kind, 'confirmation');
  await eventually(() => accuracy(ctx), (a) => a.some((r) => r.machineType === 'forklift' && r.confirmed === 1), 'the confirmation at the relay');

  // The technician changes their mind: it is a telehandler.
  await teach.getByLabel(/Wrong\? It is:/).selectOption('telehandler');
  await teach.getByRole('button', { name: 'Save this type' }).click();
  await stored.filter({ hasText: 'corrected to telehandler (gateway said forklift)' }).waitFor({ timeout: WAIT });
  await page.screenshot({ path: screenshotPath('agent-ui-teach-1280x800.png') });
  const corrected = ctx.agent.teacher.current(id)!;
  assert.is.not(corrected.correctionId, confirmed.correctionId);
  const acc = await eventually(() => accuracy(ctx), (a) => a.some((r) => r.machineType === 'telehandler'), 'the correction at the relay');
  assert.equal(acc, [
    { machineType: 'forklift', confirmed: 0, correctedAway: 1, correctedTo: 0, accuracy: 0 },
    { machineType: 'telehandler', confirmed: 0, correctedAway: 0, correctedTo: 1, accuracy: null },
  ]);
  assert.equal(await accuracy(ctx, await tokenFor('tenant-other')), [], 'another tenant sees no labels');

  // A reload shows what is stored.
  await page.reload();
  await page.locator('#history').getByRole('button', { name: /Open analysis/ }).first().click();
  await page.getByTestId('teach-stored').filter({ hasText: 'corrected to telehandler' }).first().waitFor({ timeout: WAIT });
  await page.close();

  // The office's dashboard: the "Real-world accuracy" panel, every number labelled.
  const dash = await ctx.browser.newPage({ viewport: LAPTOP });
  await dash.goto(ctx.relay.url);
  await dash.getByLabel('Access token (JWT)').fill(ctx.token);
  await dash.getByRole('button', { name: 'Sign in' }).click();
  const panel = dash.getByRole('region', { name: 'Real-world accuracy', exact: true });
  const row = panel.getByRole('row').filter({ hasText: 'forklift' });
  await row.waitFor({ timeout: WAIT });
  assert.equal((await row.getByRole('cell').allInnerTexts()).map((s) => s.trim()), ['0', '1', '0', '0 %']);
  const header = await panel.getByRole('columnheader').allInnerTexts();
  assert.match(header.join(' | '), /Confirmed\s+gateway said this type, technician agreed/);
  assert.match(header.join(' | '), /Accuracy\s+confirmed ÷ \(confirmed \+ corrected away\)/);
  assert.match(await panel.getByRole('row').filter({ hasText: 'telehandler' }).innerText(), /the gateway never said this type/);
  await dash.screenshot({ path: screenshotPath('dashboard-accuracy-1280x800.png'), fullPage: true });
  await dash.close();
});

t.run();
