import { execFile } from 'node:child_process';
import { mkdtemp, writeFile, symlink, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createVisionEngine } from '@tu/agent/internal/services/vision/engine';
import { VisionError } from '@tu/agent/internal/services/vision/errors';
import { inputSpec, parseManifest, REPO_MANIFEST_DIR, resolveManifest } from '@tu/agent/internal/services/vision/manifest';
import { embedImages } from '@tu/agent/internal/services/vision/embed-dataset';
import { trainHead } from '@tu/agent/internal/services/vision/head';
import { saveHead } from '@tu/agent/internal/services/vision/head-format';
import { preprocessImage, toModelInput } from '@tu/agent/internal/services/vision/preprocess';
import { photo, REPO_ROOT, V1_TFJS_DIR, V2_ONNX_DIR } from './support/data.js';

const code = (err: unknown): string => (err instanceof VisionError ? err.code : `not a VisionError: ${String(err)}`);

async function rejects(p: Promise<unknown>, expect: string, msg: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.is(code(err), expect, (err as Error).message);
    assert.match((err as Error).message, msg);
    return;
  }
  assert.unreachable(`expected ${expect}`);
}

test('engine is chosen by the manifest: V2 → onnx on onnxruntime, v1 → tfjs-graph on wasm', async () => {
  const v2 = await resolveManifest(V2_ONNX_DIR);
  assert.is(v2.manifest.engine, 'onnx');
  assert.is(v2.origin, path.join(REPO_MANIFEST_DIR, 'mobilenet_v2_100_224_quant.manifest.json'));
  const onnx = await createVisionEngine({ modelDir: V2_ONNX_DIR });
  const tfjs = await createVisionEngine({ modelDir: V1_TFJS_DIR });
  try {
    assert.equal([onnx.info().model.kind, onnx.info().model.backend, onnx.info().model.embeddingDim], ['onnx', 'onnxruntime', 1280]);
    assert.equal([tfjs.info().model.kind, tfjs.info().model.backend, tfjs.info().model.embeddingDim], ['tfjs-graph', 'wasm', 256]);
    assert.match(onnx.info().model.version, /^sha256-cb516e113400$/);
  } finally {
    onnx.dispose();
    tfjs.dispose();
  }
});

test('ONNX inference on real photos: forklift → ImageNet forklift, crane → crane (machine)', async () => {
  const e = await createVisionEngine({ modelDir: V2_ONNX_DIR });
  try {
    const fork = await e.recognize(photo('forklift/imagenet_n03384352_forklift.jpg'));
    assert.is(fork.imagenetTopK[0]?.label, 'forklift', JSON.stringify(fork.imagenetTopK));
    assert.is(fork.machineType, 'forklift');
    assert.is(fork.embedding.length, 1280);
    const sum = fork.imagenetTopK.reduce((s, p) => s + p.score, 0);
    assert.ok(sum > 0 && sum <= 1.0001, 'background dropped, probabilities still ≤ 1');
    const crane = await e.recognize(photo('crane/imagenet_n03126707_crane.jpg'));
    assert.is(crane.machineType, 'crane', JSON.stringify(crane.imagenetTopK));
  } finally {
    e.dispose();
  }
});

test('preprocessing: NCHW (pixel-128)/128 from the manifest equals the NHWC [0,1] input rearranged', async () => {
  const m = await resolveManifest(V2_ONNX_DIR);
  const spec = inputSpec(m.manifest);
  const nchw = await preprocessImage(photo('forklift/alltech_forklift.jpg'), { input: spec });
  const nhwc = await preprocessImage(photo('forklift/alltech_forklift.jpg'));
  const n = 224 * 224;
  for (const i of [0, 777, n - 1]) for (let c = 0; c < 3; c++) {
    const v01 = nhwc.data[i * 3 + c] ?? NaN;
    assert.ok(Math.abs((nchw.data[c * n + i] ?? NaN) - (v01 * 255 - 128) / 128) < 1e-5);
  }
  assert.equal(Array.from(toModelInput(Uint8Array.from([0, 128, 255]), 3, 1, spec)), [-1, 0, 127 / 128]);
});

test('bad manifest → MODEL_INVALID naming the field; missing model → MODEL_NOT_FOUND naming where it looked', async () => {
  const good = JSON.parse(await readFile(path.join(REPO_MANIFEST_DIR, 'mobilenet_v2_100_224_quant.manifest.json'), 'utf8')) as Record<string, unknown>;
  assert.throws(
    () => parseManifest({ ...good, engine: 'pytorch' }, 'm'),
    (e: unknown) => code(e) === 'MODEL_INVALID' && /engine/.test((e as Error).message) && /README/.test((e as Error).message),
  );
  assert.throws(() => parseManifest({ ...good, file: '../../etc/passwd' }, 'm'), (e: unknown) => code(e) === 'MODEL_INVALID' && /inside the model directory/.test((e as Error).message));
  assert.throws(() => parseManifest({ ...good, outputs: { softmax: true, background: true } }, 'm'), (e: unknown) => /outputs\.embedding/.test((e as Error).message));

  // A model dir whose own manifest.json is broken (the release layout): refused, not silently skipped.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tu-manifest-'));
  await symlink(path.join(V2_ONNX_DIR, 'model.onnx'), path.join(dir, 'model.onnx'));
  await symlink(path.join(V2_ONNX_DIR, 'imagenet_labels.txt'), path.join(dir, 'imagenet_labels.txt'));
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ ...good, input: { ...(good['input'] as object), layout: 'CHW' } }));
  await rejects(createVisionEngine({ modelDir: dir }), 'MODEL_INVALID', /input\.layout/);
  // Right schema, wrong weights hash: the files do not belong to this manifest.
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ ...good, sha256: 'a'.repeat(64) }));
  await rejects(createVisionEngine({ modelDir: dir }), 'MODEL_INVALID', /sha256 cb516e113400.*expects aaaaaaaaaaaa/);
  // Valid manifest in the dir: loads from there.
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(good));
  const e = await createVisionEngine({ modelDir: dir });
  assert.is(e.info().model.kind, 'onnx');
  e.dispose();

  const empty = await mkdtemp(path.join(os.tmpdir(), 'tu-nomodel-'));
  await rejects(createVisionEngine({ modelDir: empty }), 'MODEL_NOT_FOUND', /manifest\.json.*model\.json/s);
});

test('a head trained for MobileNet v1 is refused by MobileNet V2 with the backbone it needs and how to retrain', async () => {
  const v1 = await createVisionEngine({ modelDir: V1_TFJS_DIR });
  const info = v1.info().model;
  const files = ['forklift/alltech_forklift.jpg', 'forklift/rf_forklift_052IJLOWFGWF.jpg', 'crane/css_4.jpg', 'crane/nll_crane.jpg', 'negative/imagenet_alp.jpg', 'negative/imagenet_groom.jpg'];
  const { embedded } = await embedImages(v1, files.map((f) => ({ file: photo(f), label: f.split('/')[0] ?? '' })));
  v1.dispose();
  const head = trainHead(embedded, {
    kind: 'logreg',
    calibrationFolds: 0,
    imagesDir: 'test',
    backbone: { id: info.id, version: info.version, embeddingDim: info.embeddingDim },
    preprocessing: { fit: 'cover', tta: false },
  });
  const headPath = path.join(await mkdtemp(path.join(os.tmpdir(), 'tu-head-')), 'head.json');
  await saveHead(headPath, head);
  await rejects(
    createVisionEngine({ modelDir: V2_ONNX_DIR, headPath }),
    'HEAD_MISMATCH',
    /trained for backbone mobilenet_v1_025_224_tfhub sha256-227ca27733b7.*mobilenet_v2_100_224_quant sha256-cb516e113400.*npm run build:head/s,
  );
  // The same head on its own backbone loads.
  const ok = await createVisionEngine({ modelDir: V1_TFJS_DIR, headPath });
  assert.ok(ok.info().model.head);
  ok.dispose();
});

test('an ONNX-only process never loads tfjs (tfjs registers globalThis._tfengine when imported)', async () => {
  // A fresh process: this test process has loaded tfjs for the v1 tests above.
  const script = `
    const { createVisionEngine } = await import(${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'agent/dist/services/vision/engine.js')).href)});
    const e = await createVisionEngine({ modelDir: ${JSON.stringify(V2_ONNX_DIR)} });
    await e.recognize(${JSON.stringify(photo('forklift/alltech_forklift.jpg'))});
    e.dispose();
    console.log(JSON.stringify({ tfjs: globalThis._tfengine !== undefined }));`;
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, timeout: 60_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
  assert.equal(JSON.parse(out.trim().split('\n').pop() ?? '{}'), { tfjs: false });
});

test.run();
