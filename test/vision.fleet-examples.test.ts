/**
 * A fleet's technician labels, exported by the relay, train a head (npm run train-head
 * --examples): the relay's export line (relay/src/cli/export-examples.ts) is read back by
 * agent/src/services/vision/fleet-examples.ts; other backbones and bad lines are skipped and
 * reported, never mixed in.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { toExampleLine } from '@tu/relay/internal/cli/export-examples';
import type { LabelledExampleRow } from '@tu/relay/internal/storage/types';
import { listLabelledImages } from '@tu/agent/internal/services/vision/dataset';
import { createVisionEngine } from '@tu/agent/internal/services/vision/engine';
import { readFleetExamples } from '@tu/agent/internal/services/vision/fleet-examples';
import { predictHead, trainHead } from '@tu/agent/internal/services/vision/head';
import { IMAGES_DIR, MODEL_DIR } from './support/data.js';

test('relay export lines train a head; other backbones and bad lines are reported and skipped', async () => {
  const engine = await createVisionEngine({ modelDir: MODEL_DIR });
  const m = engine.info().model;
  const photos = (await listLabelledImages(IMAGES_DIR)).filter((p) => ['excavator', 'forklift', 'negative'].includes(p.label)).slice(0, 30);
  const rows: LabelledExampleRow[] = [];
  for (const [i, p] of photos.entries()) {
    const r = await engine.recognize(p.file);
    rows.push({
      id: `corr-${String(i).padStart(6, '0')}`,
      tenantId: 't1',
      gatewayId: `gw-${i % 3}`,
      analysisId: `an-${String(i).padStart(6, '0')}`,
      machineId: null,
      sha256: 'a'.repeat(64),
      embedding: r.embedding,
      label: p.label,
      previousLabel: r.machineType,
      kind: r.machineType === p.label ? 'confirmation' : 'correction',
      by: 'tech',
      at: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
      modelId: m.id,
      modelVersion: m.version,
      headId: null,
      receivedAt: new Date().toISOString(),
    });
  }
  engine.dispose();
  const lines = rows.map((r) => JSON.stringify(toExampleLine(r)));
  lines.push(JSON.stringify(toExampleLine({ ...rows[0]!, id: 'corr-old-backbone', modelVersion: 'sha256-000000000000' })));
  lines.push(JSON.stringify({ ...toExampleLine(rows[1]!), label: 'spaceship' }));
  lines.push('{not json');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tu-fleet-')), 'examples.jsonl');
  fs.writeFileSync(file, lines.join('\n') + '\n');

  const fleet = await readFleetExamples(file, { version: m.version, embeddingDim: m.embeddingDim });
  assert.is(fleet.samples.length, rows.length);
  assert.equal(fleet.otherBackbone, { [`${m.id}@sha256-000000000000`]: 1 });
  assert.is(fleet.invalid.length, 2);
  assert.match(fleet.invalid[0]!.reason, 'label');
  assert.is(fleet.invalid[1]!.line, lines.length);

  const head = trainHead(fleet.samples, { kind: 'logreg', solver: 'ridge', l2: 3, calibrationFolds: 0, imagesDir: file, backbone: { id: m.id, version: m.version, embeddingDim: m.embeddingDim }, preprocessing: { fit: 'cover', tta: false } });
  assert.equal([...head.labels].sort(), ['excavator', 'forklift']);
  const right = fleet.samples.filter((s) => predictHead(head, s.embedding).machineType === (s.label === 'negative' ? 'unknown' : s.label)).length;
  assert.ok(right >= fleet.samples.length * 0.8, `${right}/${fleet.samples.length} training examples predicted back`);
});

test('an examples file that cannot be read: TRAINING_DATA_INVALID naming the file and how to write it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tu-fleet-missing-'));
  for (const [file, why] of [[path.join(dir, 'none.jsonl'), 'no such file'], [dir, 'it is a directory']] as const) {
    const err = await readFleetExamples(file, { version: 'v', embeddingDim: 4 }).then(() => undefined, (e: unknown) => e as { code?: string; message: string });
    assert.ok(err, `${file} refused`);
    assert.is(err!.code, 'TRAINING_DATA_INVALID');
    assert.match(err!.message, `cannot read the examples file ${file} (${why})`);
    assert.match(err!.message, 'examples export');
  }
});

test.run();
