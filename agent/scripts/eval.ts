/**
 * Source-grouped evaluation of machine-type heads, per backbone, on the same split.
 *
 *   npm run eval -- [--site DIR] [--catalogue DIR|none] [--models DIR,DIR] [--folds 5] [--seed 1]
 *                   [--catalogue-weight 0.3[,1,...]] [--l2 1e-3[,...]] [--kind logreg|knn] [--solver ridge|gd]
 *                   [--extra-negatives nameplate_text,exif_gps|none] [--verbose]
 *
 * Groups: MANIFEST.csv source repo + source folder, merged with near-duplicates (cosine >
 * 0.95 under the first model), so photos of one machine are never on both sides. Every
 * site photo (testdata/images) is scored once, by a head trained on the other folds
 * (site + catalogue photos of other groups) exactly as build:head trains the default head
 * (including its own grouped out-of-fold calibration). Reports top-1 per type, the
 * confusion matrix, negatives → unknown and the reliability (ECE) of the held-out
 * confidences. Extra negatives (site folders never used for training: name plates, generic
 * GPS-tagged photos) are scored by a head trained on all photos and should be 'unknown'.
 * Embeddings are cached in .data/eval-cache/ (git-ignored).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_HEAD_TRAINING, embedTrainingPhotos, listDefaultTrainingPhotos, type EmbeddedTrainingPhoto } from '../src/services/vision/default-head.js';
import { listLabelledImages } from '../src/services/vision/dataset.js';
import { embedImages, median } from '../src/services/vision/embed-dataset.js';
import { createVisionEngine } from '../src/services/vision/engine.js';
import { groupedFolds, mergeNearDuplicates } from '../src/services/vision/groups.js';
import { expectedCalibrationError, predictHead, trainHead, UNKNOWN, type HeadTrainOptions } from '../src/services/vision/head.js';
import { confusionMatrix, formatConfusion, formatStatsTable, perClassStats } from '../src/services/vision/metrics.js';
import { fail, intArg, oneOf, repoRoot, scriptArgs } from './cli-args.js';

const USAGE = `usage: npm run eval -- [--site DIR] [--catalogue DIR|none] [--models DIR,DIR] [--folds 5] [--seed 1]
    [--catalogue-weight 0.3[,1,...]] [--l2 1e-3[,...]] [--kind logreg|knn] [--solver ridge|gd]
    [--extra-negatives nameplate_text,exif_gps|none] [--verbose]
  Source-grouped evaluation of machine-type heads per backbone (the site photos default to
  ../shared/testdata/images or TU_TESTDATA_DIR, the catalogue to ../shared/testdata/train).`;

const a = scriptArgs(
  {
    site: { type: 'string' },
    catalogue: { type: 'string' },
    models: { type: 'string' },
    folds: { type: 'string' },
    seed: { type: 'string' },
    'catalogue-weight': { type: 'string' },
    l2: { type: 'string' },
    kind: { type: 'string' },
    solver: { type: 'string' },
    'extra-negatives': { type: 'string' },
    verbose: { type: 'boolean' },
  },
  USAGE,
);
const shared = path.resolve(repoRoot, '../shared');
const siteDir = path.resolve(a.site ?? process.env['TU_TESTDATA_DIR'] ?? path.join(shared, 'testdata/images'));
const catalogueDir = a.catalogue === 'none' ? undefined : path.resolve(a.catalogue ?? path.join(shared, 'testdata/train'));
const models = (a.models ?? [path.join(shared, 'models/mobilenet_v2_100_224_quant'), path.join(shared, 'models/mobilenet_v1_025_224_tfhub')].join(','))
  .split(',')
  .map((m) => path.resolve(m));
const folds = intArg(a.folds, 'folds', 5);
const seed = intArg(a.seed, 'seed', 1);
const numList = (v: string | undefined, name: string, dflt: number): number[] =>
  (v ?? String(dflt)).split(',').map((x) => {
    const n = Number(x);
    if (!Number.isFinite(n) || n < 0) fail(`--${name} must be non-negative numbers, got '${x}'`);
    return n;
  });
const catWeights = numList(a['catalogue-weight'], 'catalogue-weight', DEFAULT_HEAD_TRAINING.domainWeights?.['catalogue'] ?? 1);
const l2s = numList(a.l2, 'l2', DEFAULT_HEAD_TRAINING.l2 ?? 1e-3);
const extraFolders = a['extra-negatives'] === 'none' ? [] : (a['extra-negatives'] ?? 'nameplate_text,exif_gps').split(',').filter(Boolean);
const kind = oneOf(a.kind, 'kind', ['logreg', 'knn'] as const, 'logreg');
const solver = oneOf(a.solver, 'solver', ['ridge', 'gd'] as const, DEFAULT_HEAD_TRAINING.solver ?? 'gd');

const photos = await listDefaultTrainingPhotos({ modelDir: models[0] ?? '', siteDir, catalogueDir });
const listKey = createHash('sha256').update(photos.map((p) => p.file).join('\n')).digest('hex').slice(0, 12);

async function embedCached(modelDir: string): Promise<EmbeddedTrainingPhoto[]> {
  const cache = path.join(repoRoot, '.data/eval-cache', `${path.basename(modelDir)}-${listKey}.json`);
  try {
    const raw = JSON.parse(await readFile(cache, 'utf8')) as (Omit<EmbeddedTrainingPhoto, 'embedding' | 'probs'> & { embedding: number[] })[];
    return raw.map((r) => ({ ...r, embedding: Float32Array.from(r.embedding), probs: new Float32Array(0) }));
  } catch {
    // not cached yet
  }
  const t0 = performance.now();
  const { embedded, failures } = await embedTrainingPhotos(modelDir, photos);
  for (const f of failures) process.stderr.write(`skipped ${f}\n`);
  console.log(
    `${path.basename(modelDir)}: embedded ${embedded.length} photos in ${((performance.now() - t0) / 1000).toFixed(1)} s (median decode ${median(embedded.map((e) => e.decodeMs)).toFixed(1)} ms, inference ${median(embedded.map((e) => e.inferenceMs)).toFixed(1)} ms)`,
  );
  await mkdir(path.dirname(cache), { recursive: true });
  await writeFile(cache, JSON.stringify(embedded.map((e) => ({ ...e, embedding: Array.from(e.embedding), probs: [] }))));
  return embedded;
}

const perModel = new Map<string, EmbeddedTrainingPhoto[]>();
for (const m of models) perModel.set(m, await embedCached(m));
// One split for every backbone: groups from the source keys + near-duplicates under the first model.
const first = perModel.get(models[0] ?? '') ?? [];
const sourceKey = new Map(photos.map((p) => [p.file, p.group]));
const merged = mergeNearDuplicates(first.map((x) => sourceKey.get(x.file) ?? x.file), first.map((x) => x.embedding));
const groupOf = new Map(first.map((e, i) => [e.file, merged[i] ?? e.file]));
const files = first.map((e) => e.file);
const foldList = groupedFolds(first.map((e) => e.label), files.map((x) => groupOf.get(x) ?? x), folds, seed);
const foldOf = new Map(files.map((f, i) => [f, foldList[i] ?? 0]));
const site = first.filter((e) => e.domain === 'site');
console.log(
  `split: ${files.length} photos (${site.length} site, ${files.length - site.length} catalogue) in ${new Set(groupOf.values()).size} source groups, ${folds} grouped folds (seed ${seed}); every site photo tested once`,
);

const pct = (x: number): string => `${(100 * x).toFixed(1)} %`;
console.log(`head: ${kind}${kind === 'logreg' ? ` (${solver})` : ''}`);
const summary: string[] = [
  `| backbone | catalogue weight | l2 | top-1 best type | top-1 reported | negatives → unknown | ECE held-out | T | extra negatives (${extraFolders.join(', ') || 'none'}) → unknown |`,
  '|---|---|---|---|---|---|---|---|---|',
];
const extraImages = extraFolders.length ? await listLabelledImages(siteDir, { ignore: [], only: extraFolders }) : [];
for (const m of models) {
  const items = (perModel.get(m) ?? []).map((e) => ({ ...e, group: groupOf.get(e.file) ?? e.file }));
  const dim = items[0]?.embedding.length ?? 0;
  let extra: Float32Array[] = [];
  if (extraImages.length) {
    const engine = await createVisionEngine({ modelDir: m });
    extra = (await embedImages(engine, extraImages)).embedded.map((e) => e.embedding);
    engine.dispose();
  }
  for (const cw of catWeights)
    for (const l2 of l2s) {
      const t0 = performance.now();
      const preds: { truth: string; predicted: string; best: string; confidence: number; file: string }[] = [];
      const temps: number[] = [];
      // The same options for every fold and for the full-data head below.
      const opts: HeadTrainOptions = {
        ...DEFAULT_HEAD_TRAINING,
        kind,
        solver,
        l2,
        domainWeights: { site: 1, catalogue: cw },
        seed,
        imagesDir: siteDir,
        backbone: { id: path.basename(m), version: 'eval', embeddingDim: dim },
        preprocessing: { fit: 'cover', tta: false },
      };
      for (let f = 0; f < folds; f++) {
        const train = items.filter((e) => foldOf.get(e.file) !== f && (cw > 0 || e.domain === 'site'));
        const test = items.filter((e) => foldOf.get(e.file) === f && e.domain === 'site');
        if (!test.length) continue;
        const head = trainHead(train, opts);
        temps.push(head.calibration?.temperature ?? 1);
        for (const e of test) {
          const p = predictHead(head, e.embedding);
          preds.push({ truth: e.label === 'negative' ? UNKNOWN : e.label, predicted: p.machineType, best: p.best.label, confidence: p.confidence, file: e.file });
        }
      }
      const machines = preds.filter((p) => p.truth !== UNKNOWN);
      const negatives = preds.filter((p) => p.truth === UNKNOWN);
      let extraUnknown = 'n/a';
      if (extra.length) {
        const full = trainHead(items.filter((e) => cw > 0 || e.domain === 'site'), opts);
        extraUnknown = `${extra.filter((v) => predictHead(full, v).machineType === UNKNOWN).length}/${extra.length}`;
      }
      const ece = expectedCalibrationError(preds.map((p) => ({ confidence: p.confidence, correct: p.predicted === p.truth })));
      summary.push(
        `| ${path.basename(m)} | ${cw} | ${l2} | ${pct(machines.filter((p) => p.best === p.truth).length / machines.length)} | ${pct(machines.filter((p) => p.predicted === p.truth).length / machines.length)} (${machines.length}) | ${pct(negatives.filter((p) => p.predicted === UNKNOWN).length / Math.max(1, negatives.length))} (${negatives.length}) | ${ece.toFixed(3)} | ${median(temps).toFixed(2)} | ${extraUnknown} |`,
      );
      console.log(`${path.basename(m)} catalogue weight ${cw}, l2 ${l2}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const labels = [...new Set([...preds.map((p) => p.truth), ...preds.map((p) => p.predicted)])].sort();
      const cm = confusionMatrix(preds.map((p) => ({ truth: p.truth, predicted: p.predicted })), labels);
      console.log(formatStatsTable(perClassStats(cm)));
      if (a.verbose || (catWeights.length === 1 && l2s.length === 1)) console.log(formatConfusion(cm));
      if (a.verbose) for (const p of preds.filter((x) => x.predicted !== x.truth)) console.log(`  ${path.relative(siteDir, p.file)}: ${p.predicted} (best ${p.best})`);
    }
}
console.log(summary.join('\n'));
