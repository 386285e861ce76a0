import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AnyEvent } from '@tu/shared';
import { inject, observer, tmpDir, until } from './support/harness.js';
import { startRealAgent, trainTestHead } from './support/real.js';

test('real photos through POST → analysis.completed with recognition (trained head), comparison and metadata', async () => {
  const { headPath, test: held } = await trainTestHead(1, 0.3);
  // The head goes where the agent looks by default: {dataDir}/head.json.
  const dataDir = tmpDir('tu-e2e-');
  fs.copyFileSync(headPath, path.join(dataDir, 'head.json'));
  const agent = await startRealAgent({}, dataDir);
  const obs = await observer(agent, 'e2e');
  try {
    assert.ok(agent.recognizer()?.info().model.head, 'head loaded from {dataDir}/head.json');
    // With a head installed nothing is degraded (without one, health says why: http.images.test.ts).
    const health = (await inject(agent, { method: 'GET', url: '/api/v1/health' })).json<{ status: string; reasons: string[] }>();
    assert.equal([health.status, health.reasons], ['ok', []]);
    const ids = new Map<string, { label: string; file: string }>();
    for (const item of held) {
      const bytes = fs.readFileSync(item.file);
      const ext = path.extname(item.file).toLowerCase();
      const ct = ext === '.png' ? 'image/png' : ext === '.webp' ? 'image/webp' : 'image/jpeg';
      const res = await inject(agent, { method: 'POST', url: '/api/v1/images', payload: bytes, headers: { 'content-type': ct } });
      assert.is(res.statusCode, 202, `${item.file}: ${res.body}`);
      ids.set(res.json<{ analysisId: string }>().analysisId, item);
    }
    const ended = (id: string): AnyEvent | undefined => obs.events.find((e) => e.subject === id && (e.type === 'analysis.completed' || e.type === 'analysis.failed'));
    await until(() => [...ids.keys()].every((id) => ended(id)), 60_000, 'every analysis to end');
    let right = 0;
    let machines = 0;
    let negUnknown = 0;
    let negatives = 0;
    for (const [id, item] of ids) {
      const end = ended(id)!;
      assert.is(end.type, 'analysis.completed', `${item.file}: ${JSON.stringify(end.data).slice(0, 400)}`);
      if (end.type !== 'analysis.completed') continue;
      const { recognition, comparison, metadata } = agent.orchestrator.status(id)!.results;
      assert.ok(recognition && comparison && metadata, item.file);
      assert.ok(recognition.model.head, 'head used');
      assert.is(recognition.model.head.id, agent.recognizer()!.info().model.head!.id);
      assert.is(recognition.model.head.labels, undefined, 'the head is named by its id; its labels are not repeated in every result');
      assert.ok(recognition.machineType === 'unknown' || agent.recognizer()!.info().model.head!.labels.includes(recognition.machineType));
      assert.ok(['match', 'mismatch', 'unknown'].includes(comparison.verdict));
      assert.ok(metadata.quality.width > 0 && ['overview', 'nameplate', 'other'].includes(metadata.category));
      if (item.label === 'negative') {
        negatives++;
        if (recognition.machineType === 'unknown') negUnknown++;
      } else {
        machines++;
        if (recognition.machineType === item.label) right++;
      }
    }
    console.log(`  e2e: ${ids.size} held-out photos, machine type top-1 ${right}/${machines}, negatives unknown ${negUnknown}/${negatives}`);
    assert.ok(negatives === 0 || negUnknown / negatives >= 0.75, 'negatives mostly reported unknown');
    assert.ok(right >= machines * 0.25, 'better than chance over 13 types');
  } finally {
    await obs.bus.close();
    await agent.stop();
  }
});

test.run();
