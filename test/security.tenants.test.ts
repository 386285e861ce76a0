/**
 * Issue 8 finding 9: machine ids are the tenants' own. Tenant B's gateway registering (and
 * photographing) machine `EX-SQUAT-7` first must not make tenant A's machine of that id invisible
 * to A, nor mix their fields. Real relay (MQTT ingress, GraphQL), on SQLite and on PostgreSQL.
 */
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Relay } from '@tu/relay';
import { tmpDir } from './support/harness.js';
import { addGateway, analysisFlow, connectGateway, dropPgSchema, gql, PG_BASE, pgSchemaName, publishEvent, startTestRelay, tokenFor, type Envelope } from './support/relay.js';

const MACHINE = 'EX-SQUAT-7';
const MACHINE_FIELDS = 'id gatewayId name type brand serialNumber registeredId latestThumbnail analyses(first: 10) { nodes { id gatewayId machineId } }';

async function poll(what: string, done: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface MachineView {
  id: string;
  gatewayId: string;
  name: string | null;
  type: string | null;
  brand: string | null;
  serialNumber: string | null;
  registeredId: string | null;
  latestThumbnail: string | null;
  analyses: { nodes: { id: string; gatewayId: string; machineId: string }[] };
}

function tenantSuite(engine: string, storage: () => { url: string; cleanup: () => Promise<void> }) {
  type Ctx = { relay: Relay; cleanup: () => Promise<void> };
  const test = suite<Ctx>(`security (${engine}): machine ids are per tenant`);
  test.before(async (ctx) => {
    const s = storage();
    ctx.cleanup = s.cleanup;
    ctx.relay = await startTestRelay({ overrides: { 'storage.url': s.url } });
  });
  test.after(async (ctx) => {
    await ctx.relay?.stop();
    await ctx.cleanup?.();
  });

  test(`tenant B's gateway using ${MACHINE} first: each tenant sees its own machine, its own fields, and nothing of the other's`, async (ctx) => {
    const { relay } = ctx;
    const gwA = await connectGateway(relay.mqttUrl, 'gw-tenant-a', await addGateway(relay, 'gw-tenant-a', 'tenant-a'));
    const gwB = await connectGateway(relay.mqttUrl, 'gw-tenant-b', await addGateway(relay, 'gw-tenant-b', 'tenant-b'));
    const [tokA, tokB] = [await tokenFor('tenant-a'), await tokenFor('tenant-b')];
    const send = async (gw: typeof gwA, id: string, flow: Envelope[]) => {
      for (const e of flow) assert.is(await publishEvent(gw, id, e), 'ok', `${id} ${e.type}`);
    };
    const machineOf = async (token: string) => (await gql<{ machine: MachineView | null }>(relay, token, `query($id: ID!) { machine(id: $id) { ${MACHINE_FIELDS} } }`, { id: MACHINE })).data?.machine ?? null;

    // B first (the squatter), then A, each registering the same machine id.
    const flowB = analysisFlow('gw-tenant-b', { machineId: MACHINE, registered: { id: MACHINE, name: 'Squatted crane', type: 'crane', brand: 'Liebherr', serialNumber: 'LBH-1' }, thumbnail: 'QkJC' });
    await send(gwB, 'gw-tenant-b', flowB);
    await poll(`B's ${MACHINE} stored`, async () => ((await machineOf(tokB))?.analyses.nodes.length ?? 0) > 0);
    const flowA = analysisFlow('gw-tenant-a', { machineId: MACHINE, registered: { id: MACHINE, name: 'Site 4 excavator', type: 'excavator', brand: 'Caterpillar', serialNumber: 'CAT-S4' }, thumbnail: 'QUFB' });
    await send(gwA, 'gw-tenant-a', flowA);
    // A's completed analysis is stored (visible by its own id) whether or not its machine shows.
    await poll(`A's analysis stored`, async () => (await gql<{ analysis: { status: string } | null }>(relay, tokA, 'query($id: ID!) { analysis(id: $id) { status } }', { id: flowA[0]!.subject })).data?.analysis?.status === 'completed');

    const a = await machineOf(tokA);
    assert.ok(a, `tenant A sees its machine ${MACHINE}`);
    assert.equal(
      { gatewayId: a.gatewayId, name: a.name, type: a.type, brand: a.brand, serialNumber: a.serialNumber, registeredId: a.registeredId, latestThumbnail: a.latestThumbnail },
      { gatewayId: 'gw-tenant-a', name: 'Site 4 excavator', type: 'excavator', brand: 'Caterpillar', serialNumber: 'CAT-S4', registeredId: MACHINE, latestThumbnail: 'QUFB' },
      "A's machine carries A's fields",
    );
    assert.equal(a.analyses.nodes.map((n) => [n.id, n.gatewayId]), [[flowA[0]!.subject, 'gw-tenant-a']], "A's machine lists A's analysis only");

    const b = await machineOf(tokB);
    assert.ok(b);
    assert.equal(
      { gatewayId: b.gatewayId, name: b.name, type: b.type, brand: b.brand, latestThumbnail: b.latestThumbnail },
      { gatewayId: 'gw-tenant-b', name: 'Squatted crane', type: 'crane', brand: 'Liebherr', latestThumbnail: 'QkJC' },
      "B's machine is untouched by A's",
    );
    assert.equal(b.analyses.nodes.map((n) => n.gatewayId), ['gw-tenant-b']);

    // Lists, filters and the other tenant's analysis ids: nothing crosses over.
    for (const [token, gw, other, otherFlow] of [
      [tokA, 'gw-tenant-a', 'gw-tenant-b', flowB],
      [tokB, 'gw-tenant-b', 'gw-tenant-a', flowA],
    ] as const) {
      const list = await gql<{ machines: { nodes: { id: string; gatewayId: string }[] }; analyses: { nodes: { gatewayId: string }[] } }>(
        relay,
        token,
        `query($m: ID!) { machines(first: 50, search: "${MACHINE}") { nodes { id gatewayId } } analyses(first: 50, machineId: $m) { nodes { gatewayId } } }`,
        { m: MACHINE },
      );
      assert.equal(list.data?.machines.nodes, [{ id: MACHINE, gatewayId: gw }]);
      assert.ok(list.data?.analyses.nodes.every((n) => n.gatewayId === gw), `no analysis of ${other}`);
      const foreign = await gql<{ analysis: unknown }>(relay, token, 'query($id: ID!) { analysis(id: $id) { id } }', { id: otherFlow[0]!.subject });
      assert.is(foreign.data?.analysis, null, `the other tenant's analysis is not visible`);
    }
    gwA.end(true);
    gwB.end(true);
  });
  return test;
}

tenantSuite('SQLite', () => ({ url: `sqlite:${path.join(tmpDir('tu-relay-tenants-'), 'relay.sqlite')}`, cleanup: async () => undefined })).run();

tenantSuite('PostgreSQL', () => {
  const schema = pgSchemaName();
  return { url: `${PG_BASE}?schema=${schema}`, cleanup: () => dropPgSchema(schema) };
}).run();
