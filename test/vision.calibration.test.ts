import { copyFile, mkdir, mkdtemp, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildDefaultHead, embedTrainingPhotos, type EmbeddedTrainingPhoto } from '@tu/agent/internal/services/vision/default-head';
import { groupedFolds } from '@tu/agent/internal/services/vision/groups';
import { expectedCalibrationError, predictHead, trainHead, UNKNOWN, type HeadTrainOptions } from '@tu/agent/internal/services/vision/head';
import { listTrainingPhotos } from '@tu/agent/internal/services/vision/training-set';
import { IMAGES_DIR, V2_ONNX_DIR } from './support/data.js';

let site: EmbeddedTrainingPhoto[] = [];
let backbone = { id: '', version: '', embeddingDim: 0 };

test.before(async () => {
  const r = await embedTrainingPhotos(V2_ONNX_DIR, await listTrainingPhotos(IMAGES_DIR, 'site'));
  site = r.embedded;
  backbone = r.backbone;
});

const opts = (): HeadTrainOptions => ({
  kind: 'logreg',
  solver: 'ridge',
  l2: 1,
  imagesDir: IMAGES_DIR,
  backbone,
  preprocessing: { fit: 'cover', tta: false },
});

test('source groups: MANIFEST.csv folders + near-duplicates; grouped folds never split a group', () => {
  const groups = new Set(site.map((s) => s.group));
  assert.ok(groups.size > 10 && groups.size < site.length, `${groups.size} groups for ${site.length} photos`);
  const fold = groupedFolds(site.map((s) => s.label), site.map((s) => s.group), 5, 1);
  const foldOfGroup = new Map<string, number>();
  site.forEach((s, i) => {
    const f = foldOfGroup.get(s.group);
    if (f !== undefined) assert.is(fold[i], f, `group ${s.group} split across folds`);
    foldOfGroup.set(s.group, fold[i] ?? -1);
  });
});

test('calibration: temperature fitted out-of-fold, confidences in [0,1], reliability no worse than uncalibrated', () => {
  const head = trainHead(site, opts());
  const t = head.calibration?.temperature ?? NaN;
  assert.ok(t > 0 && Number.isFinite(t), `temperature ${t}`);
  for (const s of site) {
    const p = predictHead(head, s.embedding);
    assert.ok(p.confidence >= 0 && p.confidence <= 1, `${p.confidence}`);
    assert.is(p.topK.length, 3);
    for (const k of p.topK) assert.ok(k.score >= 0 && k.score <= 1);
  }
  const m = head.metrics;
  assert.type(m['cvEce'], 'number');
  // Ridge scores are not probabilities: raw softmax of them is badly calibrated; the fitted temperature must fix that.
  assert.ok((m['cvEce'] as number) <= (m['cvEceUncalibrated'] as number) + 1e-9, JSON.stringify(m));
  assert.ok((m['cvEce'] as number) < 0.25, `out-of-fold ECE ${m['cvEce']}`);
  assert.is(expectedCalibrationError([{ confidence: 0.8, correct: true }, { confidence: 0.8, correct: false }]), 0.30000000000000004);
});

test('held-out groups: negative photos → unknown with a reason and no machine type', () => {
  const fold = groupedFolds(site.map((s) => s.label), site.map((s) => s.group), 5, 1);
  let negatives = 0;
  for (let f = 0; f < 5; f++) {
    const head = trainHead(site.filter((_, i) => fold[i] !== f), opts());
    for (const [i, s] of site.entries()) {
      if (fold[i] !== f || s.label !== 'negative') continue;
      negatives++;
      const p = predictHead(head, s.embedding);
      assert.is(p.machineType, UNKNOWN, `${s.file}: ${JSON.stringify(p.best)}`);
      assert.type(p.unknownReason, 'string');
    }
  }
  assert.ok(negatives >= 10, `${negatives} negatives tested`);
});

test('build:head: builds once, then skips while backbone and data are unchanged', async () => {
  // A small site set (two types + negatives) copied from the real photos into a temp dir (outside the repo).
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tu-buildhead-'));
  for (const type of ['forklift', 'crane', 'negative']) {
    await mkdir(path.join(dir, type));
    for (const f of (await readdir(path.join(IMAGES_DIR, type))).filter((x) => x.endsWith('.jpg')).slice(0, 5)) {
      await copyFile(path.join(IMAGES_DIR, type, f), path.join(dir, type, f));
    }
  }
  const out = path.join(dir, 'dist/head/default-head.json');
  const a = await buildDefaultHead({ modelDir: V2_ONNX_DIR, siteDir: dir }, out);
  assert.is(a.upToDate, false);
  assert.is(a.head.source.backbone.version, backbone.version);
  assert.match(a.head.source.dataFingerprint ?? '', /^sha256-/);
  const b = await buildDefaultHead({ modelDir: V2_ONNX_DIR, siteDir: dir }, out);
  assert.is(b.upToDate, true);
  assert.is(b.head.id, a.head.id);
});

test.run();
