import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listLabelledImages, stratifiedSplit } from '@tu/agent/internal/services/vision/dataset';
import { embedImages, type EmbeddedImage } from '@tu/agent/internal/services/vision/embed-dataset';
import { createVisionEngine } from '@tu/agent/internal/services/vision/engine';
import { VisionError } from '@tu/agent/internal/services/vision/errors';
import { loadHead, saveHead } from '@tu/agent/internal/services/vision/head-format';
import { predictHead, trainHead, UNKNOWN, type HeadTrainOptions } from '@tu/agent/internal/services/vision/head';
import { IMAGES_DIR, MODEL_DIR, photo } from './support/data.js';


/** Photos held out of every head trained in the tests. */
const HELD_OUT_FORKLIFT = 'forklift/imagenet_n03384352_forklift.jpg';
const HELD_OUT_NEGATIVE = 'negative/imagenet_lakeside.jpg';

let all: EmbeddedImage[] = [];
let dim = 0;

test.before(async () => {
  const engine = await createVisionEngine({ modelDir: MODEL_DIR });
  dim = engine.info().model.embeddingDim;
  all = (await embedImages(engine, await listLabelledImages(IMAGES_DIR))).embedded;
  engine.dispose();
});

const opts = (kind: 'knn' | 'logreg'): HeadTrainOptions => ({
  kind,
  imagesDir: IMAGES_DIR,
  backbone: { id: path.basename(MODEL_DIR), version: 'test', embeddingDim: dim },
  preprocessing: { fit: 'cover', tta: false },
});

test('dataset: type folders found, exif_gps/nameplate_text ignored, split is seeded and stratified', () => {
  const labels = new Set(all.map((e) => e.label));
  assert.ok(labels.has('excavator') && labels.has('negative'));
  assert.not.ok(labels.has('exif_gps') || labels.has('nameplate_text'));
  const a = stratifiedSplit(all, 0.3, 7);
  const b = stratifiedSplit(all, 0.3, 7);
  assert.equal(a.test.map((x) => x.file), b.test.map((x) => x.file));
  assert.ok(a.train.some((x) => x.label === 'aerial_lift'), 'single-photo types stay in training');
});

for (const kind of ['knn', 'logreg'] as const) {
  test(`${kind}: held-out forklift → forklift, held-out negative → unknown with a reason`, () => {
    const held = new Set([photo(HELD_OUT_FORKLIFT), photo(HELD_OUT_NEGATIVE)]);
    const head = trainHead(all.filter((e) => !held.has(e.file)), opts(kind));
    const fork = all.find((e) => e.file === photo(HELD_OUT_FORKLIFT));
    const neg = all.find((e) => e.file === photo(HELD_OUT_NEGATIVE));
    assert.ok(fork && neg);
    const pf = predictHead(head, fork.embedding);
    assert.is(pf.machineType, 'forklift', JSON.stringify(pf));
    assert.is(pf.topK.length, 3);
    const pn = predictHead(head, neg.embedding);
    assert.is(pn.machineType, UNKNOWN);
    assert.type(pn.unknownReason, 'string');
    assert.ok(pn.confidence >= 0 && pn.confidence <= 1);
  });
}

test('head file: save → load round trip, zod rejects corrupt files', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vision-head-'));
  const file = path.join(dir, 'head.json');
  const head = trainHead(all, opts('knn'));
  await saveHead(file, head);
  const loaded = await loadHead(file);
  assert.equal(loaded, JSON.parse(JSON.stringify(head)));
  const e = all[0];
  assert.ok(e);
  assert.equal(predictHead(loaded, e.embedding).machineType, predictHead(head, e.embedding).machineType);

  const raw = JSON.parse(await readFile(file, 'utf8')) as { parameters: { vectors: number[][] }; labels: unknown };
  const bad = path.join(dir, 'bad.json');
  raw.parameters.vectors[0] = [1, 2, 3]; // wrong dimension
  await writeFile(bad, JSON.stringify(raw));
  for (const content of [JSON.stringify(raw), '{"format":"tu-vision-head"', JSON.stringify({ ...head, labels: 'forklift' })]) {
    await writeFile(bad, content);
    try {
      await loadHead(bad);
      assert.unreachable('corrupt head must be rejected');
    } catch (err) {
      assert.instance(err, VisionError);
      assert.is((err as VisionError).code, 'HEAD_INVALID');
    }
  }
});

test('predicting with an embedding of the wrong size → HEAD_MISMATCH', () => {
  const head = trainHead(all, opts('logreg'));
  try {
    predictHead(head, new Float32Array(dim + 1));
    assert.unreachable();
  } catch (err) {
    assert.is((err as VisionError).code, 'HEAD_MISMATCH');
  }
});

test.run();
