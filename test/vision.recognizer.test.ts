import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listLabelledImages } from '@tu/agent/internal/services/vision/dataset';
import { VisionError } from '@tu/agent/internal/services/vision/errors';
import { createRecognizer, type Recognizer } from '@tu/agent/internal/services/vision/recognizer';
import { IMAGES_DIR, MODEL_DIR, photo } from './support/data.js';
import { trainHeadOn } from './support/head.js';


/** Photos held out of every head trained in the tests. */
const HELD_OUT_FORKLIFT = 'forklift/imagenet_n03384352_forklift.jpg';
const HELD_OUT_NEGATIVE = 'negative/imagenet_lakeside.jpg';

let headPath = '';
let rec: Recognizer;

test.before(async () => {
  // Train a head on every photo except the two held out below.
  const held = new Set([photo(HELD_OUT_FORKLIFT), photo(HELD_OUT_NEGATIVE)]);
  headPath = await trainHeadOn((await listLabelledImages(IMAGES_DIR)).filter((i) => !held.has(i.file)));
  rec = await createRecognizer({ modelDir: MODEL_DIR, headPath });
});

test.after(async () => {
  await rec.dispose();
});

test('runs in a worker on the engine its manifest names and reports model + head', () => {
  const info = rec.info();
  assert.is(info.thread, 'worker');
  assert.is(info.model.backend, info.model.kind === 'onnx' ? 'onnxruntime' : 'wasm');
  assert.is(info.model.id, path.basename(MODEL_DIR));
  assert.ok(info.model.head && info.model.head.labels.includes('forklift'));
});

test('held-out forklift photo (path and Buffer) → forklift, full result shape', async () => {
  const r = await rec.recognize(photo(HELD_OUT_FORKLIFT));
  assert.is(r.machineType, 'forklift', JSON.stringify({ ...r, embedding: r.embedding.length }));
  assert.ok(r.confidence > 0 && r.confidence <= 1);
  assert.is(r.topK.length, 3);
  assert.is(r.imagenetTopK.length, 5);
  assert.ok(r.imagenetTopK.every((p) => typeof p.label === 'string' && Number.isInteger(p.index)));
  assert.is(r.embedding.length, rec.info().model.embeddingDim);
  const norm = Math.sqrt(r.embedding.reduce((a, v) => a + v * v, 0));
  assert.ok(Math.abs(norm - 1) < 1e-3, `embedding is L2-normalised (${norm})`);
  assert.ok(r.model.head !== null);
  assert.ok(r.timings.decodeMs > 0 && r.timings.inferenceMs > 0 && r.timings.headMs >= 0);
  assert.ok(r.image.width > 0 && r.image.height > 0);
  const fromBuffer = await rec.recognize(await readFile(photo(HELD_OUT_FORKLIFT)));
  assert.is(fromBuffer.machineType, 'forklift');
});

test('held-out negative photo → unknown with reason', async () => {
  const r = await rec.recognize(photo(HELD_OUT_NEGATIVE));
  assert.is(r.machineType, 'unknown');
  assert.type(r.unknownReason, 'string');
});

test('typed errors cross the worker boundary', async () => {
  try {
    await rec.recognize(Buffer.from('not an image'));
    assert.unreachable();
  } catch (err) {
    assert.instance(err, VisionError);
    assert.is((err as VisionError).code, 'IMAGE_DECODE_FAILED');
  }
});

test('main event loop stays responsive during recognitions', async () => {
  const files = ['tractor/rp_tractor.jpg', 'crane/desimichael_crane-full.jpg', 'wheel_loader/desimichael_equip.jpg', HELD_OUT_FORKLIFT].map(photo);
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let busyMs = 0;
  for (let round = 0; round < 2; round++) {
    const results = await Promise.all(files.map((f) => rec.recognize(f)));
    busyMs += results.reduce((a, r) => a + r.timings.inferenceMs + r.timings.decodeMs, 0);
  }
  h.disable();
  const p99 = h.percentile(99) / 1e6;
  const max = h.max / 1e6;
  // Worker time (decode + inference) is hundreds of ms; the loop should barely notice.
  assert.ok(busyMs > 100, `work done: ${busyMs.toFixed(0)} ms`);
  assert.ok(p99 < 20, `event-loop delay p99 ${p99.toFixed(1)} ms (max ${max.toFixed(1)} ms) while workers spent ${busyMs.toFixed(0)} ms`);
});

test('without a head: ImageNet mapping for crane, unknown "no head trained" otherwise', async () => {
  const plain = await createRecognizer({ modelDir: MODEL_DIR });
  try {
    const crane = await plain.recognize(photo('crane/desimichael_crane-full.jpg'));
    assert.is(crane.machineType, 'crane');
    assert.is(crane.model.head, null);
    const bird = await plain.recognize(photo('negative/imagenet_crane-bird.jpg'));
    assert.is(bird.machineType, 'unknown');
    assert.match(bird.unknownReason ?? '', /no head trained/);
  } finally {
    await plain.dispose();
  }
  try {
    await plain.recognize(photo('crane/desimichael_crane-full.jpg'));
    assert.unreachable();
  } catch (err) {
    assert.is((err as VisionError).code, 'RECOGNIZER_DISPOSED');
  }
});

test.run();
