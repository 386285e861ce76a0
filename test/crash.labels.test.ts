import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { EXAMPLES_FILE, listExamples } from '@tu/agent/internal/teach/examples';
import { bearerFor, startProcessHandlers, tmpDir } from './support/harness.js';
import { freePort, startProcess, writeProcessAgentConfig } from './support/processes.js';
import { photoBytes } from './support/real.js';

const GW = 'gw-crash-labels';
const SECRET = 'crash-labels-secret-crash-labels-secret-1';
const LABELS = ['excavator', 'crane', 'negative', 'wheel_loader'] as const;

test('kill -9 right after labels are answered: every 201/200 label is still there after the restart, and gets published', async () => {
  const dataDir = tmpDir('tu-crash-labels-');
  const [busPort, httpPort] = [await freePort(), await freePort()];
  const configFile = writeProcessAgentConfig(path.join(dataDir, 'agent.json'), { gatewayId: GW, dataDir, busPort, httpPort });
  const start = () => startProcess('agent/dist/main.js', ['--config', configFile], '"agent started"', { TU_BUS_SECRET: SECRET, LOG_LEVEL: 'info' });
  const base = `http://127.0.0.1:${httpPort}`;
  const auth = await bearerFor(GW, dataDir);
  let agent = await start();
  const handlers = await startProcessHandlers({ gatewayId: GW, secret: SECRET, port: busPort, suffix: 'crash-labels' });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await fetch(`${base}/api/v1/images`, { method: 'POST', body: photoBytes('forklift/imagenet_n03384352_forklift.jpg'), headers: { 'content-type': 'image/jpeg', ...auth } });
      assert.is(r.status, 202);
      ids.push(((await r.json()) as { analysisId: string }).analysisId);
    }
    const status = async (id: string) => ((await (await fetch(`${base}/api/v1/analyses/${id}`, { headers: auth })).json()) as { status?: string }).status;
    for (const id of ids) {
      for (let k = 0; (await status(id)) !== 'completed'; k++) {
        if (k > 400) throw new Error(`${id} did not complete`);
        await new Promise((r) => setTimeout(r, 25));
      }
    }

    // Answered labels per analysis (the last answer wins); the agent is killed while more are in flight.
    const answered = new Map<string, { correctionId: string; label: string; at: string }>();
    let answers = 0;
    for (let cycle = 0; cycle < 5; cycle++) {
      const before = answers;
      const inFlight = ids.map(async (id, i) => {
        const label = LABELS[(i + cycle) % LABELS.length]!;
        try {
          const r = await fetch(`${base}/api/v1/analyses/${id}/label`, { method: 'POST', body: JSON.stringify({ label, by: `tech-${cycle}` }), headers: { 'content-type': 'application/json', ...auth } });
          if (r.status === 200 || r.status === 201) {
            const l = ((await r.json()) as { label: { correctionId: string; at: string } }).label;
            answered.set(id, { correctionId: l.correctionId, label, at: l.at });
            answers++;
          }
        } catch {
          // killed before it answered: nothing promised
        }
      });
      // Killed right after the first answer of this cycle (others still in flight), not after a
      // fixed time: on a loaded machine no label had been answered yet when a timer fired.
      const firstAnswer = Date.now();
      while (answers === before && Date.now() - firstAnswer < 10_000) await new Promise((r) => setTimeout(r, 2));
      await new Promise((r) => setTimeout(r, cycle * 5));
      // An agent that died by itself would never emit 'exit' again: say so instead of waiting on nothing.
      if (agent.exitCode !== null || agent.signalCode !== null) throw new Error(`the agent exited by itself before kill ${cycle} (code ${agent.exitCode}, signal ${agent.signalCode})`);
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGKILL');
      await exited;
      await Promise.all(inFlight);
      agent = await start();
      for (const [id, want] of answered) {
        const got = ((await (await fetch(`${base}/api/v1/analyses/${id}/label`, { headers: auth })).json()) as { label: { correctionId: string; label: string; at: string } | null }).label;
        assert.ok(got, `${id}: the label answered before the kill is kept`);
        // A later request may have been stored but not answered (killed in between): never an older one.
        if (got.correctionId === want.correctionId) assert.is(got.label, want.label);
        else assert.ok(got.at >= want.at, `${id}: ${got.at} is not older than the answered ${want.at}`);
      }
    }
    assert.ok(answers >= 5, `a label was answered before each of the 5 kills (${answers} in all)`);
    const examples = listExamples(dataDir);
    assert.ok(examples.length >= answered.size);
    for (const x of examples) assert.is(x.embedding.length, 256);
    // After the last start, nothing stored is left unpublished.
    const db = new Database(path.join(dataDir, EXAMPLES_FILE), { readonly: true });
    const unpublished = (db.prepare('SELECT count(*) AS n FROM examples WHERE published = 0').get() as { n: number }).n;
    db.close();
    assert.is(unpublished, 0);
  } finally {
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
    for (const h of handlers) await h.close();
  }
});

test.run();
