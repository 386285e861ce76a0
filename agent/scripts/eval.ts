/**
 * Evaluate the machine-type head on labelled photos.
 *
 *   tsx agent/scripts/eval.ts --images DIR [--seed 1] [--test-fraction 0.3] [--repeats 1]
 *   tsx agent/scripts/eval.ts --train DIR --test DIR
 *   options: --model DIR  --kind knn|logreg|both  --fit cover|fill|contain  --tta
 *            --k N  --transform l2|center-l2|standardize  --compare (grid of settings)
 *            --extra-negatives nameplate_text,exif_gps (folders only tested, expected 'unknown')
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_IGNORED_FOLDERS, countByLabel, listLabelledImages, stratifiedSplit, type LabelledImage } from '../src/services/vision/dataset.js';
import { embedImages, median, type EmbeddedImage } from '../src/services/vision/embed-dataset.js';
import { createVisionEngine, DEFAULT_FIT, DEFAULT_TTA } from '../src/services/vision/engine.js';
import { evaluateSplit, type EvalOutcome } from '../src/services/vision/evaluate.js';
import { FEATURE_TRANSFORMS, type FeatureTransformKind } from '../src/services/vision/features.js';
import { UNKNOWN, predictHead, type HeadTrainOptions } from '../src/services/vision/head.js';
import type { HeadKind } from '../src/services/vision/head-format.js';
import { formatConfusion, formatStatsTable } from '../src/services/vision/metrics.js';
import { FIT_MODES, type FitMode } from '../src/services/vision/preprocess.js';
import { defaultModelDir, fail, intArg, numArg, oneOf } from './cli-args.js';

const { values: a } = parseArgs({
  options: {
    images: { type: 'string' },
    train: { type: 'string' },
    test: { type: 'string' },
    model: { type: 'string' },
    seed: { type: 'string' },
    'test-fraction': { type: 'string' },
    repeats: { type: 'string' },
    kind: { type: 'string' },
    fit: { type: 'string' },
    tta: { type: 'boolean' },
    k: { type: 'string' },
    transform: { type: 'string' },
    compare: { type: 'boolean' },
    'extra-negatives': { type: 'string' },
    verbose: { type: 'boolean' },
  },
});

if (!a.images && !(a.train && a.test)) fail('give --images DIR, or --train DIR --test DIR');
const modelDir = path.resolve(a.model ?? defaultModelDir());
const seed = intArg(a.seed, 'seed', 1);
const testFraction = numArg(a['test-fraction'], 'test-fraction', 0.3);
const repeats = intArg(a.repeats, 'repeats', 1);
const kindArg = oneOf(a.kind, 'kind', ['knn', 'logreg', 'both'] as const, 'both');
const kinds: HeadKind[] = kindArg === 'both' ? ['knn', 'logreg'] : [kindArg];
const fit = oneOf<FitMode>(a.fit, 'fit', FIT_MODES, DEFAULT_FIT);
const tta = a.tta ?? DEFAULT_TTA;
const transform = a.transform === undefined ? undefined : oneOf<FeatureTransformKind>(a.transform, 'transform', FEATURE_TRANSFORMS, 'l2');
const k = a.k === undefined ? undefined : intArg(a.k, 'k', 3);
const extraNegFolders = (a['extra-negatives'] ?? '').split(',').filter(Boolean);

interface Sets {
  all: LabelledImage[];
  trainDir: string;
  extra: LabelledImage[];
}

async function loadSets(): Promise<Sets> {
  const ignore = [...DEFAULT_IGNORED_FOLDERS];
  if (a.images) {
    const dir = path.resolve(a.images);
    const all = await listLabelledImages(dir, { ignore });
    const extra = extraNegFolders.length ? await listLabelledImages(dir, { ignore: [], only: extraNegFolders }) : [];
    return { all, trainDir: dir, extra };
  }
  const trainDir = path.resolve(a.train ?? '');
  const train = await listLabelledImages(trainDir, { ignore });
  const test = await listLabelledImages(path.resolve(a.test ?? ''), { ignore });
  return { all: [...train.map((t) => ({ ...t, label: t.label, split: 'train' })), ...test.map((t) => ({ ...t, split: 'test' }))], trainDir, extra: [] };
}

async function embedAll(images: LabelledImage[], f: FitMode, flip: boolean): Promise<{ items: EmbeddedImage[]; wallMs: number }> {
  const engine = await createVisionEngine({ modelDir, fit: f, tta: flip });
  const t0 = performance.now();
  const { embedded, failures } = await embedImages(engine, images);
  const wallMs = performance.now() - t0;
  engine.dispose();
  for (const x of failures) process.stderr.write(`skipped ${x.file}: ${x.code} ${x.message}\n`);
  return { items: embedded, wallMs };
}

function split(items: EmbeddedImage[], s: number): { train: EmbeddedImage[]; test: EmbeddedImage[] } {
  if (a.train && a.test) {
    const t = items as (EmbeddedImage & { split?: string })[];
    return { train: t.filter((x) => x.split === 'train'), test: t.filter((x) => x.split === 'test') };
  }
  return stratifiedSplit(items, testFraction, s);
}

function headOpts(kind: HeadKind, f: FitMode, flip: boolean, s: number, dim: number, extra: Partial<HeadTrainOptions> = {}): HeadTrainOptions {
  return {
    kind,
    seed: s,
    imagesDir: sets.trainDir,
    backbone: { id: path.basename(modelDir), version: 'eval', embeddingDim: dim },
    preprocessing: { fit: f, tta: flip },
    ...(transform ? { featureTransform: transform } : {}),
    ...(k ? { k } : {}),
    ...extra,
  };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const meanSd = (xs: number[]): string => {
  const m = xs.reduce((p, c) => p + c, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((p, c) => p + (c - m) ** 2, 0) / xs.length);
  return xs.length > 1 ? `${pct(m)} ±${(sd * 100).toFixed(1)}` : pct(m);
};

function runRepeats(items: EmbeddedImage[], kind: HeadKind, f: FitMode, flip: boolean, extra: Partial<HeadTrainOptions> = {}) {
  const dim = items[0]?.embedding.length ?? 0;
  const outs: EvalOutcome[] = [];
  for (let r = 0; r < repeats; r++) {
    const { train, test } = split(items, seed + r);
    outs.push(evaluateSplit(train, test, headOpts(kind, f, flip, seed + r, dim, extra)));
  }
  return outs;
}

const sets = await loadSets();
console.log(`model ${modelDir}`);
console.log(`photos: ${sets.all.length}  ${JSON.stringify(countByLabel(sets.all))}`);

if (a.compare) {
  const rows: string[] = ['| fit | tta | head | top-1 (best type) | top-1 (reported) | negatives→unknown |', '|---|---|---|---|---|---|'];
  for (const f of ['cover', 'fill'] as FitMode[]) {
    for (const flip of [false, true]) {
      const { items, wallMs } = await embedAll(sets.all, f, flip);
      console.log(`embedded ${items.length} photos fit=${f} tta=${flip} in ${(wallMs / 1000).toFixed(1)} s`);
      const variants: { name: string; kind: HeadKind; extra: Partial<HeadTrainOptions> }[] = [
        { name: 'knn k=1 center-l2', kind: 'knn', extra: { k: 1, featureTransform: 'center-l2' } },
        { name: 'knn k=3 center-l2', kind: 'knn', extra: { k: 3, featureTransform: 'center-l2' } },
        { name: 'knn k=5 center-l2', kind: 'knn', extra: { k: 5, featureTransform: 'center-l2' } },
        { name: 'knn k=3 l2', kind: 'knn', extra: { k: 3, featureTransform: 'l2' } },
        { name: 'logreg standardize', kind: 'logreg', extra: { featureTransform: 'standardize' } },
        { name: 'logreg center-l2 x16', kind: 'logreg', extra: { featureTransform: 'center-l2', l2: 1e-3, learningRate: 4 } },
      ];
      for (const v of variants) {
        const outs = runRepeats(items, v.kind, f, flip, v.extra);
        rows.push(`| ${f} | ${flip} | ${v.name} | ${meanSd(outs.map((o) => o.top1))} | ${meanSd(outs.map((o) => o.top1Accepted))} | ${meanSd(outs.map((o) => o.negativesUnknown))} |`);
      }
    }
  }
  console.log(`\nGrid over ${repeats} seeded split(s) (seed ${seed}..${seed + repeats - 1}, test fraction ${testFraction}):`);
  console.log(rows.join('\n'));
  process.exit(0);
}

const { items, wallMs } = await embedAll(sets.all, fit, tta);
console.log(
  `embedded ${items.length} photos (fit=${fit}, tta=${tta}) in ${(wallMs / 1000).toFixed(1)} s; median decode ${median(items.map((i) => i.decodeMs)).toFixed(1)} ms, median inference ${median(items.map((i) => i.inferenceMs)).toFixed(1)} ms`,
);
const extra = sets.extra.length ? (await embedAll(sets.extra, fit, tta)).items : [];

for (const kind of kinds) {
  const outs = runRepeats(items, kind, fit, tta);
  const first = outs[0];
  if (!first) continue;
  const { train, test } = split(items, seed);
  console.log(`\n=== head: ${kind} (${JSON.stringify(Object.fromEntries(Object.entries(first.head.metrics).filter(([m]) => ['featureTransform', 'k', 'l2'].includes(m))))}) ===`);
  console.log(`split seed ${seed}: train ${train.length}, test ${test.length} (${first.machineCount} machines, ${first.negativeCount} negatives); unknown threshold ${first.head.unknownThreshold} (${first.head.unknownMetric})`);
  console.log(formatStatsTable(first.stats));
  console.log('\nconfusion matrix (rows = truth):');
  console.log(formatConfusion(first.confusion));
  console.log(`\ntop-1 over machine types (best type, ignoring unknown decision): ${pct(first.top1)}`);
  console.log(`top-1 over machine types (reported machineType, unknown counts as wrong): ${pct(first.top1Accepted)}`);
  console.log(`negatives reported unknown: ${pct(first.negativesUnknown)}`);
  if (extra.length) {
    const unk = extra.filter((e) => predictHead(first.head, e.embedding).machineType === UNKNOWN).length;
    console.log(`extra negatives (${extraNegFolders.join(',')}, never trained on) reported unknown: ${unk}/${extra.length}`);
  }
  if (a.verbose) {
    for (const p of first.predictions.filter((q) => q.predicted !== q.truth)) {
      console.log(`  miss: ${path.basename(p.file ?? '')} truth=${p.truth} predicted=${p.predicted} best=${p.bestType} conf=${p.confidence.toFixed(2)} ${p.reason ?? ''}`);
    }
  }
  if (outs.length > 1) {
    console.log(
      `over ${outs.length} seeds: top-1 ${meanSd(outs.map((o) => o.top1))}, reported ${meanSd(outs.map((o) => o.top1Accepted))}, negatives→unknown ${meanSd(outs.map((o) => o.negativesUnknown))}`,
    );
  }
}
