/**
 * Feature/head probe for the machine-type head (measurement tool, not used at run time).
 *
 *   tsx agent/scripts/probe-features.ts --images DIR [--cache .data/probe-views.json] [--repeats 5]
 *
 * Embeds every labelled photo with MobileNet and Tiny Darknet under several views
 * (cover, fill, 80% crops, flips), caches them, then compares feature sets, train-time
 * augmentation, test-time view pooling and heads with leave-one-out (every photo
 * tested by a head trained on all OTHER photos) and repeated seeded 70/30 splits.
 * Unknown rule as in head.ts with the lower-bound threshold: unknown iff the
 * negative class is at least as likely as the best machine type.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/services/vision/backend.js';
import { listLabelledImages, stratifiedSplit } from '../src/services/vision/dataset.js';
import { loadBackbone } from '../src/services/vision/model.js';
import { preprocessViews, type ViewName } from '../src/services/vision/preprocess.js';
import { predictLogreg, trainLogreg } from '../src/services/vision/classifier-logreg.js';
import { argmax, l2Normalize, meanVector } from '../src/services/vision/vector.js';
import { repoRoot, intArg } from './cli-args.js';

const { values: a } = parseArgs({ options: { images: { type: 'string' }, cache: { type: 'string' }, repeats: { type: 'string' }, only: { type: 'string' } } });
const imagesDir = path.resolve(a.images ?? path.resolve(repoRoot, '../shared/testdata/images'));
const cacheFile = path.resolve(a.cache ?? path.join(repoRoot, '.data/probe-views.json'));
const repeats = intArg(a.repeats, 'repeats', 5);
const MODELS = { m: path.resolve(repoRoot, '../shared/models/mobilenet_v1_025_224_tfhub'), d: path.resolve(repoRoot, '../shared/models/darknet_tiny') };
const VIEWS: ViewName[] = ['cover', 'cover-flip', 'fill', 'fill-flip', 'c80', 'c80-flip', 'tl', 'tr', 'bl', 'br'];

interface Item { file: string; label: string; emb: Record<string, number[][]>; logp: Record<string, number[]> }

async function extract(): Promise<Item[]> {
  await initBackend({ force: 'wasm' });
  const images = await listLabelledImages(imagesDir);
  const items: Item[] = images.map((i) => ({ file: path.basename(i.file), label: i.label, emb: {}, logp: {} }));
  for (const [key, dir] of Object.entries(MODELS)) {
    const bb = await loadBackbone(dir);
    const t0 = performance.now();
    for (const [i, img] of images.entries()) {
      const v = await preprocessViews(img.file, VIEWS);
      const x = tf.tensor4d(v.data, [VIEWS.length, v.size, v.size, 3]);
      const out = bb.infer(x);
      x.dispose();
      const it = items[i]!;
      it.emb[key] = out.map((o) => Array.from(o.embedding, (z) => Math.round(z * 1e5) / 1e5));
      it.logp[key] = Array.from(out[0]!.probs, (p) => Math.round(Math.log(Math.max(p, 1e-6)) * 1e3) / 1e3);
    }
    console.log(`${key}: ${images.length} photos x ${VIEWS.length} views in ${((performance.now() - t0) / 1000).toFixed(1)} s; tensors ${tf.memory().numTensors}`);
    bb.dispose();
  }
  return items;
}

const items: Item[] = existsSync(cacheFile) ? (JSON.parse(await readFile(cacheFile, 'utf8')) as Item[]) : await extract();
if (!existsSync(cacheFile)) await writeFile(cacheFile, JSON.stringify(items));
const viewIdx = (names: ViewName[]): number[] => names.map((n) => VIEWS.indexOf(n));

// ---- feature construction ----
type FeatSet = 'm' | 'd' | 'md' | 'md+logp';
function viewFeature(it: Item, fs: FeatSet, v: number): Float32Array {
  const blocks = (fs === 'm' ? ['m'] : fs === 'd' ? ['d'] : ['m', 'd']).map((k) => l2Normalize(it.emb[k]![v]!));
  const parts: Float32Array[] = blocks.map((b) => b.map((x) => x / Math.sqrt(blocks.length)));
  if (fs === 'md+logp') {
    const lp = it.logp['d']!;
    const p = l2Normalize(lp.map((x) => Math.exp(x))).map((x) => x * 0.5);
    parts.push(p);
  }
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
/** Pooled test feature: mean of the L2-normalised view features, re-normalised. */
function pooled(it: Item, fs: FeatSet, views: number[]): Float32Array {
  return l2Normalize(meanVector(views.map((v) => viewFeature(it, fs, v))));
}

// ---- heads ----
interface Head { predict(x: Float32Array): number[] }
type HeadKind = 'logreg' | 'logreg-strong' | 'ncm';
function center(rows: Float32Array[], mean: Float32Array): Float32Array[] {
  return rows.map((r) => l2Normalize(r.map((x, i) => x - (mean[i] ?? 0))));
}
function fitHead(kind: HeadKind, x: Float32Array[], y: number[], nc: number): Head {
  const mean = meanVector(x);
  const xc = center(x, mean);
  if (kind === 'ncm') {
    const cm = Array.from({ length: nc }, (_, c) => l2Normalize(meanVector(xc.filter((_, i) => y[i] === c))));
    return {
      predict: (v) => {
        const z = center([v], mean)[0]!;
        const s = cm.map((m) => m.reduce((acc, q, j) => acc + q * (z[j] ?? 0), 0) / 0.05);
        const mx = Math.max(...s);
        const e = s.map((q) => Math.exp(q - mx));
        const t = e.reduce((p, q) => p + q, 0);
        return e.map((q) => q / t);
      },
    };
  }
  const { parameters } = trainLogreg(xc, y, nc, { l2: kind === 'logreg' ? 1e-3 : 1e-2, iterations: 300, learningRate: 4 });
  return { predict: (v) => predictLogreg(parameters, center([v], mean)[0]!) };
}

const classes = [...new Set(items.map((i) => i.label))].sort();
const NEG = 'negative';
interface Config { name: string; fs: FeatSet; trainViews: number[]; testViews: number[]; head: HeadKind; trainPooled?: boolean }

function evaluate(cfg: Config, trainIdx: number[], testIdx: number[]) {
  const x: Float32Array[] = [];
  const y: number[] = [];
  for (const i of trainIdx) {
    const it = items[i]!;
    if (cfg.trainPooled) {
      x.push(pooled(it, cfg.fs, cfg.trainViews));
      y.push(classes.indexOf(it.label));
    } else {
      for (const v of cfg.trainViews) {
        x.push(viewFeature(it, cfg.fs, v));
        y.push(classes.indexOf(it.label));
      }
    }
  }
  const head = fitHead(cfg.head, x, y, classes.length);
  const negI = classes.indexOf(NEG);
  return testIdx.map((i) => {
    const it = items[i]!;
    const p = head.predict(pooled(it, cfg.fs, cfg.testViews));
    const machine = p.map((q, c) => (c === negI ? -1 : q));
    const b = argmax(machine);
    const predicted = (p[negI] ?? 0) >= (p[b] ?? 0) ? 'unknown' : classes[b]!;
    return { truth: it.label, best: classes[b]!, predicted };
  });
}
function summarise(preds: { truth: string; best: string; predicted: string }[]) {
  const m = preds.filter((p) => p.truth !== NEG);
  const n = preds.filter((p) => p.truth === NEG);
  return { best: m.filter((p) => p.best === p.truth).length / m.length, reported: m.filter((p) => p.predicted === p.truth).length / m.length, neg: n.filter((p) => p.predicted === 'unknown').length / Math.max(1, n.length) };
}
const pct = (x: number): string => `${(x * 100).toFixed(1)}`;

const base = viewIdx(['cover']);
const flip = viewIdx(['cover', 'cover-flip']);
const all = viewIdx(VIEWS);
const crops = viewIdx(['cover', 'cover-flip', 'c80', 'c80-flip']);
let configs: Config[] = [];
for (const fs of ['m', 'd', 'md', 'md+logp'] as FeatSet[]) {
  for (const head of ['logreg', 'logreg-strong', 'ncm'] as HeadKind[]) {
    configs.push({ name: `${fs} ${head} train=cover test=cover`, fs, head, trainViews: base, testViews: base });
    configs.push({ name: `${fs} ${head} train=cover+flip test=cover+flip`, fs, head, trainViews: flip, testViews: flip });
    configs.push({ name: `${fs} ${head} train=10views test=cover+flip`, fs, head, trainViews: all, testViews: flip });
    configs.push({ name: `${fs} ${head} train=10views test=4views`, fs, head, trainViews: all, testViews: crops });
    configs.push({ name: `${fs} ${head} train=4views test=cover+flip`, fs, head, trainViews: crops, testViews: flip });
    configs.push({ name: `${fs} ${head} train=10views test=10views`, fs, head, trainViews: all, testViews: all });
  }
}
if (a.only) configs = configs.filter((c) => c.name.includes(a.only ?? ''));
const idx = items.map((_, i) => i);
console.log(`${items.length} photos, classes ${classes.join(',')}`);
console.log('| features | head | train views | test views | LOO top-1 best | LOO top-1 reported | LOO neg→unknown | 5 seeds reported (mean±sd) | 5 seeds neg→unknown |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const cfg of configs) {
  const t0 = performance.now();
  const loo = summarise(idx.flatMap((i) => evaluate(cfg, idx.filter((j) => j !== i), [i])));
  const seeds = Array.from({ length: repeats }, (_, r) => {
    const { train, test } = stratifiedSplit(idx.map((i) => ({ i, label: items[i]!.label })), 0.3, 1 + r);
    return summarise(evaluate(cfg, train.map((t) => t.i), test.map((t) => t.i)));
  });
  const ms = (xs: number[]): string => {
    const mu = xs.reduce((p, c) => p + c, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((p, c) => p + (c - mu) ** 2, 0) / xs.length);
    return `${pct(mu)} ±${pct(sd)}`;
  };
  const [fs, head, tr, te] = cfg.name.split(' ');
  console.log(`| ${fs} | ${head} | ${tr} | ${te} | ${pct(loo.best)} | ${pct(loo.reported)} | ${pct(loo.neg)} | ${ms(seeds.map((s) => s.reported))} | ${ms(seeds.map((s) => s.neg))} |  (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
}
