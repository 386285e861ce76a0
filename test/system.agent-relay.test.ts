/**
 * The agent and the relay as real child processes: photos POSTed to the agent are
 * analysed by the real services, forwarded by the uplink, pushed live to a graphql-ws
 * subscriber and stored by the relay; the relay goes away and comes back without losing
 * or duplicating anything. The technician calling the agent holds a token the relay signed
 * (`technicians token`), verified by the agent offline with the provisioned public key: it
 * keeps working while the relay is down.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { ChildProcess } from 'node:child_process';
import { issueToken } from '@tu/relay';
import { packedEmbedding, unpack } from '@tu/shared';
import { MODEL_DIR, photoBytes } from './support/real.js';
import { freePort, startProcess, stopProcess } from './support/processes.js';
import Database from 'better-sqlite3';
import { tmpDir, until } from './support/harness.js';

const GW = 'gw-system';
const JWT = 'system-test-jwt-secret-0123456789';
const GW_SECRET = 'system-test-gateway-secret-0123456789';
const PHOTOS = ['excavator', 'wheel_loader', 'forklift', 'crane'];
const firstPhoto = (dir: string) => `${dir}/${fs.readdirSync(path.join(process.env.TU_TESTDATA_DIR ?? path.resolve(import.meta.dirname, '../../shared/testdata/images'), dir)).sort()[0]}`;

interface Seen { type: string; analysisId: string; gatewayId: string; time: string }

test('photos flow agent → relay → live subscription and storage; relay outage loses and duplicates nothing', async () => {
  const dir = tmpDir('tu-system-');
  const [relayHttp, relayMqtt, agentHttp, agentMqtt] = [await freePort(), await freePort(), await freePort(), await freePort()];
  fs.writeFileSync(path.join(dir, 'registry.json'), JSON.stringify({ tenants: [{ id: 'acme' }, { id: 'globex' }], gateways: [{ id: GW, tenant: 'acme', secret: GW_SECRET }] }));
  fs.writeFileSync(path.join(dir, 'relay.json'), JSON.stringify({ dataDir: path.join(dir, 'relay'), http: { host: '127.0.0.1', port: relayHttp }, ingress: { host: '127.0.0.1', port: relayMqtt }, jwt: { secret: JWT }, registryFile: path.join(dir, 'registry.json') }));
  fs.writeFileSync(path.join(dir, 'uplink-password'), GW_SECRET + '\n');
  // The relay's technician key, provisioned on the gateway (tu-agent provision --technician-key).
  const relayCli = (...args: string[]) => execFileSync(process.execPath, ['relay/dist/main.js', '--config', path.join(dir, 'relay.json'), ...args], { encoding: 'utf8' }).trim();
  fs.writeFileSync(path.join(dir, 'relay-technician-key.pem'), relayCli('technicians', 'key') + '\n');
  fs.writeFileSync(
    path.join(dir, 'agent.json'),
    JSON.stringify({
      gatewayId: GW,
      dataDir: path.join(dir, 'agent'),
      broker: { host: '127.0.0.1', port: agentMqtt },
      http: { host: '127.0.0.1', port: agentHttp },
      model: { dir: MODEL_DIR },
      uplink: { url: `mqtt://127.0.0.1:${relayMqtt}`, passwordFile: path.join(dir, 'uplink-password'), reconnect: { initialDelayMs: 100, maxDelayMs: 500 } },
      auth: { relayPublicKeyFile: path.join(dir, 'relay-technician-key.pem') },
    }),
  );
  const startRelayProc = () => startProcess('relay/dist/main.js', ['--config', path.join(dir, 'relay.json')], 'relay: ');
  let relay: ChildProcess = await startRelayProc();
  const agent = await startProcess('agent/dist/main.js', ['--config', path.join(dir, 'agent.json')], '"agent started"', { LOG_LEVEL: 'warn' });
  const clients: Client[] = [];
  try {
    const acme = await issueToken({ secret: JWT }, { sub: 'fleet', tenant: 'acme' });
    const globex = await issueToken({ secret: JWT }, { sub: 'other', tenant: 'globex' });
    const technician = relayCli('technicians', 'token', '--gateway', GW, '--role', 'upload,register', '--name', 'alice', '--ttl', '1h');
    const auth = { authorization: `Bearer ${technician}` };
    const viewer = relayCli('technicians', 'token', '--gateway', GW, '--role', 'view', '--name', 'alice', '--ttl', '1h');
    assert.is((await fetch(`http://127.0.0.1:${agentHttp}/api/v1/images`, { method: 'POST', body: 'x', headers: { 'content-type': 'image/jpeg', authorization: `Bearer ${viewer}` } })).status, 403, 'view only: no upload');
    const subscribe = (token: string, into: Seen[], refused?: (err: unknown) => void) =>
      new Promise<void>((resolve, reject) => {
        const c = createClient({ url: `ws://127.0.0.1:${relayHttp}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0, on: { connected: () => setTimeout(resolve, 50) } });
        clients.push(c);
        c.subscribe<{ analysisEvents: Seen }>(
          { query: `subscription { analysisEvents(gatewayId: "${GW}") { type analysisId gatewayId time } }` },
          {
            next: (m) => m.data && into.push(m.data.analysisEvents),
            error: (err) => (refused ? (refused(err), resolve()) : reject(new Error(JSON.stringify(err)))),
            complete: () => undefined,
          },
        );
      });
    const live: Seen[] = [];
    const other: Seen[] = [];
    await subscribe(acme, live);
    let otherRefused = '';
    await subscribe(globex, other, (err) => (otherRefused = JSON.stringify(err)));
    await until(() => otherRefused !== '', 5000, 'the other tenant to be refused');
    assert.match(otherRefused, /no gateway/, 'another tenant cannot subscribe to this gateway');

    const post = async (rel: string): Promise<string> => {
      const r = await fetch(`http://127.0.0.1:${agentHttp}/api/v1/images?machineId=M-1`, { method: 'POST', body: photoBytes(rel), headers: { 'content-type': 'image/jpeg', ...auth } });
      assert.is(r.status, 202, `POST ${rel}`);
      return ((await r.json()) as { analysisId: string }).analysisId;
    };

    // The machine the technician registered on the gateway; the photos below are uploaded for it.
    const registered = { id: 'M-1', name: 'Site 4 excavator', type: 'excavator', brand: 'Caterpillar', serialNumber: 'CAT-S4' };
    const put = await fetch(`http://127.0.0.1:${agentHttp}/api/v1/machine`, { method: 'PUT', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(registered) });
    assert.ok(put.status < 300, `PUT /api/v1/machine: ${put.status}`);

    // 1. Live: every event of every analysis, in order.
    const ids: string[] = [];
    for (const p of PHOTOS) ids.push(await post(firstPhoto(p)));
    await until(() => ids.every((id) => live.some((e) => e.analysisId === id && (e.type === 'analysis.completed' || e.type === 'analysis.failed'))), 60_000, 'live terminal events');
    for (const id of ids) {
      const types = live.filter((e) => e.analysisId === id).map((e) => e.type);
      // In bus order; metadata runs beside recognition (the default plan), so its place among the step events varies.
      assert.equal(types.filter((t) => t !== 'metadata.sorted'), ['tu.image.uploaded', 'analysis.started', 'recognition.completed', 'comparison.completed', 'analysis.completed'], `events of ${id}`);
      assert.ok(types.indexOf('metadata.sorted') > 1 && types.indexOf('metadata.sorted') < 5, `events of ${id}: ${types.join(', ')}`);
    }
    assert.is(other.length, 0, 'another tenant sees nothing of this gateway');

    // 2. Relay down: the agent keeps analysing; the outbox holds the events.
    await stopProcess(relay, 'SIGKILL');
    const offline: string[] = [];
    for (const p of PHOTOS) offline.push(await post(firstPhoto(p)));
    const status = async (id: string) => ((await (await fetch(`http://127.0.0.1:${agentHttp}/api/v1/analyses/${id}`, { headers: auth })).json()) as { status: string }).status;
    for (const id of offline) {
      const end = Date.now() + 60_000;
      while ((await status(id)) === 'running' || (await status(id)) === 'queued') {
        if (Date.now() > end) throw new Error(`analysis ${id} did not finish offline`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const health = (await (await fetch(`http://127.0.0.1:${agentHttp}/api/v1/health`, { headers: auth })).json()) as { uplink: { state: string; queueDepth: number } };
    assert.ok(health.uplink.queueDepth >= offline.length * 6, `outbox holds the offline events (${health.uplink.queueDepth})`);
    assert.is.not(health.uplink.state, 'online');

    // 3. Relay back: the outbox drains; storage has every analysis exactly once.
    relay = await startRelayProc();
    const gql = async (query: string) => {
      const r = await fetch(`http://127.0.0.1:${relayHttp}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${acme}` }, body: JSON.stringify({ query }) });
      return (await r.json()) as { data: { analyses: { edges: { node: { id: string; status: string } }[] } } };
    };
    const all = [...ids, ...offline];
    let stored: { id: string; status: string }[] = [];
    const end = Date.now() + 60_000;
    for (;;) {
      const res = await gql('{ analyses(first: 100) { edges { node { id status } } } }');
      stored = res.data?.analyses.edges.map((e) => e.node) ?? [];
      if (all.every((id) => stored.some((s) => s.id === id && s.status === 'completed'))) break;
      if (Date.now() > end) throw new Error(`relay stored ${JSON.stringify(stored)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.is(stored.filter((s) => all.includes(s.id)).length, all.length, 'each analysis stored once');
    const metrics = await (await fetch(`http://127.0.0.1:${relayHttp}/metrics`)).text();
    const ingested = Number(/^tu_relay_events_ingested_total\s+(\d+)/m.exec(metrics)?.[1] ?? NaN);
    // At least every offline event; one more when the relay was killed after fanning an event out but
    // before storing (and acking) it: the gateway re-sends it and it is stored once (at-least-once).
    assert.ok(ingested >= offline.length * 6, `the restarted relay ingested every offline event (${ingested})`);
    // 4. The registered machine reached the relay: found by its name, its type the registered one,
    //    the last photo's recognition kept beside it as evidence.
    type M = { id: string; name: string | null; registeredId: string | null; type: string | null; serialNumber: string | null; lastRecognition: { machineType: string } | null };
    const found = (await (
      await fetch(`http://127.0.0.1:${relayHttp}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${acme}` },
        body: JSON.stringify({ query: '{ machines(search: "Site 4") { nodes { id name registeredId type serialNumber lastRecognition { machineType } } } }' }),
      })
    ).json()) as { data: { machines: { nodes: M[] } } };
    const [machine, ...more] = found.data.machines.nodes;
    assert.is(more.length, 0);
    assert.equal({ ...machine, lastRecognition: undefined }, { id: 'M-1', name: 'Site 4 excavator', registeredId: 'M-1', type: 'excavator', serialNumber: 'CAT-S4', lastRecognition: undefined });
    assert.ok(machine?.lastRecognition?.machineType, 'the last photo recognition is evidence beside the type');
    // 5. The local bus carries only references (docs/messages.md); the uplink put the thumbnail and the
    //    embedding back in: the relay shows them as it always did (a JPEG in base64, the numbers).
    const detail = (await (
      await fetch(`http://127.0.0.1:${relayHttp}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${acme}` },
        body: JSON.stringify({ query: `{ machines(search: "Site 4") { nodes { latestThumbnail } } analysis(id: "${offline[0]}") { results } }` }),
      })
    ).json()) as { data: { machines: { nodes: { latestThumbnail: string | null }[] }; analysis: { results: { recognition: { embedding: unknown } } } } };
    const thumb = detail.data.machines.nodes[0]?.latestThumbnail;
    assert.ok(thumb && Buffer.from(thumb, 'base64').subarray(0, 2).equals(Buffer.from([0xff, 0xd8])), 'the relay has the latest photo\'s thumbnail (a JPEG)');
    assert.is(detail.data.analysis.results.recognition.embedding, undefined, 'the dashboard row holds no embedding');
    // The embedding arrived packed and is kept apart (analysis_embeddings), packed again (relay/src/storage/sql-storage.ts).
    const db = new Database(path.join(dir, 'relay', 'relay.sqlite'), { readonly: true });
    const row = db.prepare('SELECT embedding FROM analysis_embeddings WHERE analysis_id = ?').get(offline[0]) as { embedding: string } | undefined;
    db.close();
    const vector = row ? unpack(packedEmbedding.parse(JSON.parse(row.embedding))) : undefined;
    assert.ok(Array.isArray(vector) && vector.length === 1280 && vector.every((v) => typeof v === 'number' && Number.isFinite(v)), `the relay has the embedding's numbers (got ${JSON.stringify(vector)?.slice(0, 80)})`);
    const h2 = (await (await fetch(`http://127.0.0.1:${agentHttp}/api/v1/health`, { headers: auth })).json()) as { uplink: { state: string; queueDepth: number } };
    assert.is(h2.uplink.queueDepth, 0);
    assert.is(h2.uplink.state, 'online');
  } finally {
    for (const c of clients) await c.dispose();
    await stopProcess(agent);
    await stopProcess(relay);
  }
});

test.run();
