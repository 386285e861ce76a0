/**
 * The capture time on the wire (issue 9 item 1): a photo whose EXIF time has no zone still
 * carries it, as camera local time with `offset: 'unknown'`, on the agent's bus
 * (metadata.sorted), in its API, and through the uplink into the relay's storage and GraphQL.
 * Real agent (real services and model), real relay (SQLite), real MQTT in between.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { catalog, type AnyEvent } from '@tu/shared';
import type { Agent } from '@tu/agent';
import type { Relay } from '@tu/relay';
import { inject, observer } from './support/harness.js';
import { photoBytes, startRealAgent } from './support/real.js';
import { addGateway, gql, startTestRelay, tokenFor } from './support/relay.js';

type Ctx = { agent: Agent; relay: Relay; events: AnyEvent[]; token: string };
const t = suite<Ctx>('metadata: capture time on the wire, agent bus → API → relay');

t.before(async (ctx) => {
  ctx.relay = await startTestRelay();
  const secret = await addGateway(ctx.relay, 'gw-test', 'acme');
  ctx.agent = await startRealAgent({ 'uplink.url': ctx.relay.mqttUrl, 'uplink.password': secret, 'uplink.reconnect.initialDelayMs': 20, 'uplink.reconnect.maxDelayMs': 200 });
  ctx.events = (await observer(ctx.agent, 'wire')).events;
  ctx.token = await tokenFor('acme');
});
t.after(async (ctx) => {
  await ctx.agent?.stop();
  await ctx.relay?.stop();
});

interface Exif {
  captureTime?: string;
  captureLocalTime?: { time: string; offset: string; offsetFrom?: string };
}

async function analyse(ctx: Ctx, rel: string): Promise<{ id: string; api: Exif; bus: Exif; relay: Exif }> {
  const res = await inject(ctx.agent, { method: 'POST', url: '/api/v1/images', headers: { 'content-type': 'image/jpeg' }, payload: photoBytes(rel) });
  assert.is(res.statusCode, 202, res.body);
  const id = res.json<{ analysisId: string }>().analysisId;
  const poll = async <T>(what: string, get: () => Promise<T | undefined>): Promise<T> => {
    const end = Date.now() + 30_000;
    for (;;) {
      const v = await get();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((ok) => setTimeout(ok, 50));
    }
  };
  const view = await poll(`analysis of ${rel} to complete`, async () => {
    const r = await inject(ctx.agent, { method: 'GET', url: `/api/v1/analyses/${id}` });
    const v = r.statusCode === 200 ? r.json<{ status: string; results: { metadata?: { exif: Exif } } }>() : undefined;
    return v?.status === 'completed' ? v : undefined;
  });
  // The metadata step's result as it went over the agent's bus, checked against the contract the relay uses.
  const sorted = ctx.events.find((e) => e.type === 'metadata.sorted' && e.subject === id);
  assert.ok(sorted, 'metadata.sorted on the bus');
  const parsed = catalog['metadata.sorted'].schema.safeParse(sorted.data);
  assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
  // The relay stored the completed analysis with the same exif.
  const stored = await poll('the relay to store the completed analysis', async () => {
    const r = await gql<{ analysis: { status: string; results: { metadata?: { exif: Exif } } } | null }>(ctx.relay, ctx.token, 'query($id: ID!) { analysis(id: $id) { status results } }', { id });
    return r.data?.analysis?.status === 'completed' ? r.data.analysis : undefined;
  });
  return { id, api: view.results.metadata!.exif, bus: (parsed.data as { result: { exif: Exif } }).result.exif, relay: stored.results.metadata!.exif };
}

t('EXIF time without a zone (Nikon COOLPIX, Canon EOS 600D): local time with offset unknown, no instant', async (ctx) => {
  for (const [rel, time] of [
    ['exif_gps/exifsamples_DSCN0010.jpg', '2008-10-22T16:28:39'],
    ['exif_gps/exifr_IMG_5910.jpg', '2015-06-11T10:29:26.690'],
  ] as const) {
    const { api, bus, relay } = await analyse(ctx, rel);
    for (const [where, exif] of Object.entries({ api, bus, relay })) {
      assert.equal(exif.captureLocalTime, { time, offset: 'unknown' }, `${rel} (${where})`);
      assert.is(exif.captureTime, undefined, `${rel} (${where}): no instant without a zone`);
    }
  }
});

t('EXIF time with a zone from the GPS stamp: instant and local time with its offset', async (ctx) => {
  const { api, relay } = await analyse(ctx, 'exif_gps/exifr_IMG_20180725_163423-tiny.jpg');
  for (const exif of [api, relay]) {
    assert.is(exif.captureTime, '2018-07-25T16:34:23.935+02:00');
    assert.equal(exif.captureLocalTime, { time: '2018-07-25T16:34:23.935', offset: '+02:00', offsetFrom: 'gps-utc' });
  }
});

t('the contract refuses a zone-less time as an instant and a local time that carries a zone', () => {
  const schema = catalog['metadata.sorted'].schema;
  const ok = (exif: object) =>
    schema.safeParse({
      analysisId: 'abcdefgh12345', attempt: 1, commandId: '00000000-0000-4000-8000-000000000000', instance: 'i-1', durationMs: 5,
      result: { exif, quality: { width: 1, height: 1, megapixels: 0, sharpness: 0, brightness: 0, contrast: 0 }, warnings: [], category: 'other', record: { photoQuality: 'good', photoCategory: 'other' } },
    }).success;
  assert.ok(ok({ captureLocalTime: { time: '2008-10-22T16:28:39', offset: 'unknown' } }));
  assert.not.ok(ok({ captureTime: '2008-10-22T16:28:39' }), 'an instant needs its offset');
  assert.not.ok(ok({ captureLocalTime: { time: '2008-10-22T16:28:39+02:00', offset: '+02:00', offsetFrom: 'exif-offset' } }), 'local time has no designator');
  assert.not.ok(ok({ captureLocalTime: { time: '2008-10-22T16:28:39', offset: 'unknown', offsetFrom: 'gps-utc' } }), 'an unknown offset has no source');
  assert.not.ok(ok({ captureLocalTime: { time: '2008-10-22T16:28:39', offset: '+02:00' } }), 'a known offset says where it came from');
});

t.run();
