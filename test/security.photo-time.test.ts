/**
 * Issue 8 finding 10: a photo's EXIF time is the uploader's claim. A real photo rewritten to a
 * capture time 23 h ahead, with a fake GPS position, pinned the machine there: lastSeen "moves
 * only forward", so every later real photo was ignored. The gateway now judges the capture time
 * against its own clock (the upload time), flags an implausible one and orders the record by the
 * upload time instead; the relay never takes a time after its own receipt.
 * Real agent (real services and model), real relay (SQLite), real MQTT uplink in between.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { Agent } from '@tu/agent';
import type { Relay } from '@tu/relay';
import { ensureBuilt, launchChromium, screenshotPath } from './support/browser.js';
import { inject, signedInUrl, tmpDir } from './support/harness.js';
import { photoBytes, REPO_ROOT, startRealAgent } from './support/real.js';
import { addGateway, gql, startTestRelay, tokenFor } from './support/relay.js';

type Ctx = { agent: Agent; relay: Relay; token: string };
const t = suite<Ctx>('security: a future-dated photo never freezes the machine record (agent → relay)');

const MACHINE = 'EX-PT-1';
/** A real phone photo with GPS (Pixel, 50.2996 N 14.8203 E). */
const PHOTO = 'exif_gps/exifr_IMG_20180725_163423-tiny.jpg';
const REAL_POSITION = { latitude: 50.29960277777778, longitude: 14.820294444444444, altitude: 252 };

t.before(async (ctx) => {
  ctx.relay = await startTestRelay();
  const secret = await addGateway(ctx.relay, 'gw-test', 'acme-time');
  ctx.agent = await startRealAgent({ 'uplink.url': ctx.relay.mqttUrl, 'uplink.password': secret, 'uplink.reconnect.initialDelayMs': 20, 'uplink.reconnect.maxDelayMs': 200 });
  ctx.token = await tokenFor('acme-time');
});
t.after(async (ctx) => {
  await ctx.agent?.stop();
  await ctx.relay?.stop();
});

/** EXIF wall-clock string `YYYY:MM:DD HH:MM:SS` of an instant, in UTC. */
const exifTime = (ms: number): string => new Date(ms).toISOString().slice(0, 19).replace('T', ' ').replace(/-/g, ':');
const dms = (deg: number): string => `${Math.floor(deg)}/1 ${Math.floor((deg % 1) * 60)}/1 0/1`;

/** The real photo with its EXIF capture time (and optionally its GPS position) rewritten. */
async function rewritten(capture: { at: number; offset?: '+00:00' }, gps?: { latitude: number; longitude: number }): Promise<Buffer> {
  return sharp(photoBytes(PHOTO))
    .withExifMerge({
      IFD2: { DateTimeOriginal: exifTime(capture.at), SubSecTimeOriginal: '000', ...(capture.offset ? { OffsetTimeOriginal: capture.offset } : {}) },
      ...(gps ? { IFD3: { GPSLatitude: dms(gps.latitude), GPSLatitudeRef: 'N', GPSLongitude: dms(gps.longitude), GPSLongitudeRef: 'E' } } : {}),
    })
    .jpeg()
    .toBuffer();
}

interface Metadata {
  exif: { captureTime?: string; captureTimePlausible?: boolean; captureTimeProblem?: { reason: string; message: string } };
  record: { lastSeenAt?: string; lastSeenAtSource?: string; lastPosition?: { latitude: number; longitude: number } };
}
interface MachineView {
  lastSeen: string | null;
  lastSeenSource: string | null;
  lastSeenNote: string | null;
  lastPosition: { latitude: number; longitude: number } | null;
  lastRecognition: { analysisId: string } | null;
}

async function poll<T>(what: string, get: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

/** Uploads to the agent, waits for the analysis on the agent and on the relay; returns both views of the metadata and the relay's machine. */
async function upload(ctx: Ctx, bytes: Buffer, machine = MACHINE): Promise<{ id: string; uploadedAt: string; agent: Metadata; relay: Metadata; machine: MachineView }> {
  const res = await inject(ctx.agent, { method: 'POST', url: `/api/v1/images?machineId=${machine}`, headers: { 'content-type': 'image/jpeg' }, payload: bytes });
  assert.is(res.statusCode, 202, res.body);
  const id = res.json<{ analysisId: string }>().analysisId;
  const view = await poll(`analysis ${id} on the agent`, async () => {
    const r = await inject(ctx.agent, { method: 'GET', url: `/api/v1/analyses/${id}` });
    const v = r.statusCode === 200 ? r.json<{ status: string; uploadedAt: string; results: { metadata: Metadata } }>() : undefined;
    return v?.status === 'completed' ? v : undefined;
  });
  const stored = await poll(`analysis ${id} on the relay`, async () => {
    const r = await gql<{ analysis: { status: string; results: { metadata: Metadata } } | null; machine: MachineView | null }>(
      ctx.relay,
      ctx.token,
      'query($id: ID!, $m: ID!) { analysis(id: $id) { status results } machine(id: $m) { lastSeen lastSeenSource lastSeenNote lastPosition lastRecognition { analysisId } } }',
      { id, m: machine },
    );
    return r.data?.analysis?.status === 'completed' && r.data.machine ? r.data : undefined;
  });
  return { id, uploadedAt: view.uploadedAt, agent: view.results.metadata, relay: stored.analysis!.results.metadata, machine: stored.machine! };
}

t('a photo dated 23 h ahead with a fake position is flagged and does not pin the machine; a later real photo moves it on', async (ctx) => {
  // The attack: a real photo, EXIF time = now + 23 h (zone given), GPS moved to 1.5 N 1.5 E.
  const forged = await upload(ctx, await rewritten({ at: Date.now() + 23 * 3_600_000, offset: '+00:00' }, { latitude: 1.5, longitude: 1.5 }));
  for (const [where, m] of Object.entries({ agent: forged.agent, relay: forged.relay })) {
    assert.is(m.exif.captureTimePlausible, false, `${where}: the capture time is flagged`);
    assert.is(m.exif.captureTimeProblem?.reason, 'after-upload', where);
    assert.match(m.exif.captureTimeProblem?.message ?? '', /23 h after the gateway received the photo/, where);
    assert.is(m.record.lastSeenAtSource, 'upload-time', `${where}: the record says which time it is`);
    assert.is(m.record.lastSeenAt, new Date(forged.uploadedAt).toISOString(), `${where}: the record is ordered by the upload time`);
  }
  assert.is(forged.machine.lastSeen, new Date(forged.uploadedAt).toISOString(), 'the relay shows the upload time, not the future');
  assert.is(forged.machine.lastSeenSource, 'upload-time');

  // A zone-less time 23 h ahead is in the future in every zone (even UTC+14): flagged too.
  const zoneless = await upload(ctx, await rewritten({ at: Date.now() + 23 * 3_600_000 }));
  assert.is(zoneless.agent.exif.captureTimePlausible, false);
  assert.is(zoneless.agent.record.lastSeenAtSource, 'upload-time');
  // A zone-less time 10 h ahead may be a camera in UTC+10..+14: not flagged, still not used (zone unknown).
  const east = await upload(ctx, await rewritten({ at: Date.now() + 10 * 3_600_000 }));
  assert.is(east.agent.exif.captureTimePlausible, true);
  assert.is(east.agent.exif.captureTimeProblem, undefined);
  assert.is(east.agent.record.lastSeenAtSource, 'upload-time');

  // A real photo taken after those uploads (its own time, its real position) moves the machine on.
  await new Promise((ok) => setTimeout(ok, Math.max(0, Date.parse(east.uploadedAt) + 1100 - Date.now())));
  const takenAt = Math.floor(Date.now() / 1000) * 1000;
  const real = await upload(ctx, await rewritten({ at: takenAt, offset: '+00:00' }));
  assert.is(real.agent.exif.captureTimePlausible, true);
  assert.is(real.agent.record.lastSeenAtSource, 'capture-time');
  assert.is(real.machine.lastSeen, new Date(takenAt).toISOString(), 'lastSeen moved on to the real photo');
  assert.is(real.machine.lastSeenSource, 'capture-time');
  assert.is(real.machine.lastSeenNote, null);
  assert.equal(real.machine.lastPosition, REAL_POSITION, 'the position moved on from the fake one');
  assert.is(real.machine.lastRecognition?.analysisId, real.id);
});

t('a photo without a zone taken long before its upload is dated by its own time, so an older photo sent later does not move the machine back', async (ctx) => {
  const machine = 'EX-PT-OLD';
  const newer = await upload(ctx, await rewritten({ at: Math.floor(Date.now() / 1000) * 1000 - 3_600_000, offset: '+00:00' }), machine);
  assert.is(newer.machine.lastSeenSource, 'capture-time');
  // A photo of two years ago from a camera that records no zone, at another place, uploaded now.
  const oldAt = Date.UTC(2024, 4, 1, 12, 0, 0);
  const old = await upload(ctx, await rewritten({ at: oldAt }, { latitude: 1.5, longitude: 1.5 }), machine);
  for (const [where, m] of Object.entries({ agent: old.agent, relay: old.relay })) {
    assert.is(m.exif.captureTimePlausible, true, where);
    assert.is(m.record.lastSeenAtSource, 'capture-time-latest', `${where}: the record says which time it is`);
    assert.is(m.record.lastSeenAt, new Date(oldAt + 12 * 3_600_000).toISOString(), `${where}: the camera time read at UTC-12, the latest it can be`);
  }
  assert.is(old.machine.lastSeen, newer.machine.lastSeen, 'the machine stays at the newer sighting');
  assert.equal(old.machine.lastPosition, REAL_POSITION, 'and at its position');
  assert.is(old.machine.lastRecognition?.analysisId, newer.id);
});

t('the technician UI shows the forged capture time as it is, says it is not plausible and which time the record uses', async (ctx) => {
  await ensureBuilt(path.join(REPO_ROOT, 'agent/ui'));
  const browser = await launchChromium();
  try {
    const file = path.join(tmpDir('tu-photo-time-'), 'forged-time.jpg');
    const at = Date.now() + 23 * 3_600_000;
    fs.writeFileSync(file, await rewritten({ at, offset: '+00:00' }, { latitude: 1.5, longitude: 1.5 }));
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(await signedInUrl(ctx.agent));
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor({ timeout: 30_000 });
    await page.getByLabel('Choose photos').setInputFiles(file);
    const card = page.getByRole('article', { name: /forged-time\.jpg/ });
    await card.getByText('Completed', { exact: true }).waitFor({ timeout: 30_000 });
    const captured = card.getByTestId('capture-time');
    // The photo's claim is still shown (a fact about the file), with the gateway's judgement beside it.
    const shown = `${new Date(at).toISOString().slice(0, 16).replace('T', ' ')} (camera local time, UTC+00:00 from the photo)`;
    assert.ok((await captured.innerText()).startsWith(shown), `the card shows ${shown}`);
    const flag = (await card.getByTestId('capture-time-implausible').innerText()).trim();
    assert.match(flag, /^Not plausible: capture time .* is 23 h after the gateway received the photo .*The machine record uses the upload time instead\.$/s, flag);
    await page.screenshot({ path: screenshotPath('agent-ui-capture-time-implausible-1280x800.png') });
    await page.close();
  } finally {
    await browser.close();
  }
});

t.run();
