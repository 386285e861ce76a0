import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { MqttClient } from 'mqtt';
import type { Relay } from '@tu/relay';
import { runCommand } from '@tu/relay/internal/cli/commands';
import { labelled, labelVector } from './support/fixtures.js';
import { tmpDir } from './support/harness.js';
import { addGateway, connectGateway, envelope, gql, publishEvent, relayTestConfig, startTestRelay, tokenFor } from './support/relay.js';

type Ctx = { relay: Relay; dataDir: string; gw: Record<string, MqttClient>; tokens: Record<string, string> };
const test = suite<Ctx>('relay: technicians’ labels (recognition.labelled) — per-type accuracy, export, tenant isolation');

test.before(async (ctx) => {
  ctx.dataDir = tmpDir('tu-relay-labels-');
  ctx.relay = await startTestRelay({ overrides: { dataDir: ctx.dataDir } });
  ctx.gw = {};
  for (const [id, tenant] of [['acme-1', 'acme'], ['acme-2', 'acme'], ['globex-1', 'globex']] as const) {
    ctx.gw[id] = await connectGateway(ctx.relay.mqttUrl, id, await addGateway(ctx.relay, id, tenant));
  }
  ctx.tokens = { acme: await tokenFor('acme'), globex: await tokenFor('globex') };
});
test.after(async (ctx) => {
  for (const c of Object.values(ctx.gw)) c.end(true);
  await ctx.relay.stop();
});

type Acc = { machineType: string; confirmed: number; correctedAway: number; correctedTo: number; accuracy: number | null };
const ACC = 'query($g: ID) { typeAccuracy(gatewayId: $g) { machineType confirmed correctedAway correctedTo accuracy } }';

test('labels from gateways become per-type accuracy over the tenant’s gateways; re-sends count once; other tenants see nothing', async (ctx) => {
  const send = async (gw: string, over: Parameters<typeof labelled>[0], id?: string) => {
    const d = labelled(over);
    const e = envelope(gw, 'recognition.labelled', d, { id: id ?? d.correctionId, time: d.at });
    assert.is(await publishEvent(ctx.gw[gw]!, gw, e), 'ok');
    return e;
  };
  await send('acme-1', { label: 'excavator', previousLabel: 'excavator', kind: 'confirmation' });
  const away = await send('acme-2', { label: 'wheel_loader', previousLabel: 'excavator', kind: 'correction' });
  // The gateway re-sends the same correction (same event id, then even a new one): counted once.
  assert.is(await publishEvent(ctx.gw['acme-2']!, 'acme-2', away), 'ok');
  assert.is(await publishEvent(ctx.gw['acme-2']!, 'acme-2', { ...away, id: 'resent-under-a-new-event-id' }), 'ok');
  // A gateway older than packed embeddings sends the numbers as JSON: still taken.
  const oldVector = Array.from({ length: 256 }, (_, i) => Math.round(Math.sin(i) * 1000) / 8000);
  await send('globex-1', { label: 'crane', previousLabel: 'forklift', kind: 'correction', embedding: oldVector });
  // Invalid label: refused by the relay's validation (nothing stored).
  const bad = envelope('acme-1', 'recognition.labelled', { ...labelled(), label: 'spaceship' as 'crane' });
  await publishEvent(ctx.gw['acme-1']!, 'acme-1', bad);
  // A kind that contradicts the labels (a "confirmation" of a type the gateway never said): refused with its reason, not counted.
  const rejected = ctx.relay.deps.ingest.stats.rejected;
  const before = rejected.INVALID_DATA ?? 0;
  await send('acme-1', { label: 'crane', previousLabel: 'excavator', kind: 'confirmation' });
  await send('acme-1', { label: 'excavator', previousLabel: 'excavator', kind: 'correction' });
  assert.is((rejected.INVALID_DATA ?? 0) - before, 2, 'both refused as INVALID_DATA');

  await ctx.relay.deps.queue.flush();
  const acme = await gql<{ typeAccuracy: Acc[] }>(ctx.relay, ctx.tokens.acme, ACC);
  assert.equal(acme.data?.typeAccuracy, [
    { machineType: 'excavator', confirmed: 1, correctedAway: 1, correctedTo: 0, accuracy: 0.5 },
    { machineType: 'wheel_loader', confirmed: 0, correctedAway: 0, correctedTo: 1, accuracy: null },
  ]);
  const one = await gql<{ typeAccuracy: Acc[] }>(ctx.relay, ctx.tokens.acme, ACC, { g: 'acme-1' });
  assert.equal(one.data?.typeAccuracy, [{ machineType: 'excavator', confirmed: 1, correctedAway: 0, correctedTo: 0, accuracy: 1 }]);
  const globex = await gql<{ typeAccuracy: Acc[] }>(ctx.relay, ctx.tokens.globex, ACC);
  assert.equal(globex.data?.typeAccuracy.map((r) => r.machineType), ['crane', 'forklift']);
  const spy = await gql<{ typeAccuracy: Acc[] }>(ctx.relay, ctx.tokens.acme, ACC, { g: 'globex-1' });
  assert.ok(spy.errors?.length, 'another tenant’s gateway is refused');
  assert.match(spy.errors![0]!.message, /no gateway globex-1 for this tenant/);
  const anon = await gql(ctx.relay, undefined, ACC);
  assert.is(anon.status, 401);

  type Ex = { labelledExamples: { nodes: { id: string; gatewayId: string; label: string; embedding: number[]; sha256: string; modelId: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };
  const q = 'query($a: String) { labelledExamples(first: 1, after: $a) { nodes { id gatewayId label embedding sha256 modelId } pageInfo { hasNextPage endCursor } } }';
  const p1 = await gql<Ex>(ctx.relay, ctx.tokens.acme, q);
  assert.ok(p1.data?.labelledExamples.pageInfo.hasNextPage);
  const p2 = await gql<Ex>(ctx.relay, ctx.tokens.acme, q, { a: p1.data!.labelledExamples.pageInfo.endCursor });
  const nodes = [...p1.data!.labelledExamples.nodes, ...p2.data!.labelledExamples.nodes];
  assert.equal(nodes.map((n) => n.label), ['excavator', 'wheel_loader']);
  assert.not.ok(p2.data!.labelledExamples.pageInfo.hasNextPage);
  assert.is(nodes[1]!.id, (away.data as { correctionId: string }).correctionId);
  assert.equal(nodes[1]!.embedding, labelVector(), 'sent packed (float32), served as the numbers');
  const gx = await gql<Ex>(ctx.relay, ctx.tokens.globex, q);
  assert.equal(gx.data?.labelledExamples.nodes.map((n) => n.gatewayId), ['globex-1']);
  assert.equal(gx.data?.labelledExamples.nodes[0]!.embedding, oldVector, 'numbers from an older gateway, stored as sent');
});

test('CLI: `examples export --tenant` writes the tenant’s labelled examples as JSON lines', async (ctx) => {
  const out = path.join(tmpDir('tu-export-'), 'acme.jsonl');
  const config = relayTestConfig({ dataDir: ctx.dataDir });
  const msg = await runCommand(config, ['examples', 'export'], new Map([['tenant', 'acme'], ['out', out]]));
  assert.is(msg, `2 labelled examples written to ${out}`);
  const lines = fs.readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.map((l) => [l['label'], l['gatewayId']]), [['excavator', 'acme-1'], ['wheel_loader', 'acme-2']]);
  assert.equal(Object.keys(lines[0]!).sort(), ['analysisId', 'at', 'by', 'correctionId', 'embedding', 'gatewayId', 'kind', 'label', 'model', 'previousLabel', 'sha256']);
  assert.equal(lines[0]!['model'], { id: 'mobilenet_v1_025_224', version: '1', headId: null });
  const stdout = await runCommand(config, ['examples', 'export'], new Map([['tenant', 'globex']]));
  assert.is(stdout.split('\n').length, 1);
  assert.is((JSON.parse(stdout) as { label: string }).label, 'crane');
  const none = await runCommand(config, ['examples', 'export'], new Map([['tenant', 'nobody']])).then(String, (e: { code?: string }) => e.code);
  assert.is(none, 'UNKNOWN_TENANT');
});

test.run();
