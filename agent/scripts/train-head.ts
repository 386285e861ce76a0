/**
 * Train the machine-type head from a folder-per-type photo set.
 *
 *   tsx agent/scripts/train-head.ts --images DIR [--examples FILE]... [--out .data/head.json] [--model DIR]
 *       [--kind knn|logreg] [--seed N] [--fit cover|fill|contain] [--tta] [--k N]
 *
 * --examples reads a fleet's technician labels exported by the relay
 * (`npm run relay -- examples export`, JSON lines; vision/fleet-examples.ts) and trains on
 * them too (or alone, without --images): one head for all gateways of a fleet.
 *
 * Sub-folders are machine types; `negative/` holds photos without machines
 * (used as an extra class and to calibrate the 'unknown' threshold);
 * exif_gps/, nameplate_text/ and SOURCES/ are ignored. Heads trained from
 * photos of unknown licence must not be committed: the default output is
 * .data/head.json (git-ignored).
 */
import path from 'node:path';
import { countByLabel, listLabelledImages } from '../src/services/vision/dataset.js';
import { embedImages, median } from '../src/services/vision/embed-dataset.js';
import { createVisionEngine, DEFAULT_FIT, DEFAULT_TTA } from '../src/services/vision/engine.js';
import { readFleetExamples } from '../src/services/vision/fleet-examples.js';
import { FEATURE_TRANSFORMS, type FeatureTransformKind } from '../src/services/vision/features.js';
import { trainHead, type LabelledEmbedding } from '../src/services/vision/head.js';
import { saveHead, type HeadKind } from '../src/services/vision/head-format.js';
import { FIT_MODES, type FitMode } from '../src/services/vision/preprocess.js';
import { defaultModelDir, fail, intArg, oneOf, repoRoot, scriptArgs } from './cli-args.js';

const USAGE = `usage: npm run train-head -- --images DIR [--examples FILE]... [--out FILE] [--model DIR]
    [--kind knn|logreg] [--seed N] [--fit ${FIT_MODES.join('|')}] [--tta] [--k N] [--transform NAME]
  Trains a machine-type head from one folder of photos per type (negative/: no machine) and/or a
  fleet's labels exported by the relay (--examples, JSON lines). Default --out .data/head.json.`;

const a = scriptArgs(
  {
    images: { type: 'string' },
    out: { type: 'string' },
    model: { type: 'string' },
    kind: { type: 'string' },
    seed: { type: 'string' },
    fit: { type: 'string' },
    tta: { type: 'boolean' },
    k: { type: 'string' },
    transform: { type: 'string' },
    examples: { type: 'string', multiple: true },
  },
  USAGE,
);
if (!a.images && !a.examples?.length) fail(`--images or --examples is needed\n${USAGE}`);
const imagesDir = a.images ? path.resolve(a.images) : '';
const out = path.resolve(a.out ?? path.join(repoRoot, '.data/head.json'));
const modelDir = path.resolve(a.model ?? defaultModelDir());
const kind = oneOf<HeadKind>(a.kind, 'kind', ['knn', 'logreg'], 'logreg');
const seed = intArg(a.seed, 'seed', 1);
const fit = oneOf<FitMode>(a.fit, 'fit', FIT_MODES, DEFAULT_FIT);
const tta = a.tta ?? DEFAULT_TTA;

try {
  const images = imagesDir ? await listLabelledImages(imagesDir) : [];
  if (imagesDir) console.log(`images: ${imagesDir}`);
  console.log(`counts: ${JSON.stringify(countByLabel(images))}`);
  const engine = await createVisionEngine({ modelDir, fit, tta });
  const info = engine.info();
  console.log(`model: ${info.model.id} ${info.model.version} (${info.model.kind}, ${info.model.embeddingDim}-d) backend ${info.model.backend}`);
  const t0 = performance.now();
  const { embedded, failures } = await embedImages(engine, images);
  engine.dispose();
  for (const f of failures) console.warn(`skipped ${f.file}: ${f.code} ${f.message}`);
  const samples: LabelledEmbedding[] = [...embedded];
  for (const file of a.examples ?? []) {
    const fleet = await readFleetExamples(path.resolve(file), { version: info.model.version, embeddingDim: info.model.embeddingDim });
    for (const bad of fleet.invalid) console.warn(`${file}:${bad.line}: skipped, ${bad.reason}`);
    for (const [b, n] of Object.entries(fleet.otherBackbone)) console.warn(`${file}: ${n} examples embedded by ${b}, not ${info.model.id}@${info.model.version}: skipped`);
    console.log(`${file}: ${fleet.samples.length} technician examples ${JSON.stringify(countByLabel(fleet.samples.map((x) => ({ file: x.file ?? '', label: x.label }))))}`);
    samples.push(...fleet.samples);
  }
  if (samples.length === 0) fail('nothing to train on: no photos and no usable examples', 1);
  console.log(
    `embedded ${embedded.length} photos in ${((performance.now() - t0) / 1000).toFixed(1)} s (median decode ${median(embedded.map((e) => e.decodeMs)).toFixed(1)} ms, inference ${median(embedded.map((e) => e.inferenceMs)).toFixed(1)} ms)`,
  );
  const head = trainHead(samples, {
    kind,
    seed,
    imagesDir: [imagesDir, ...(a.examples ?? [])].filter(Boolean).join(path.delimiter),
    backbone: { id: info.model.id, version: info.model.version, embeddingDim: info.model.embeddingDim },
    preprocessing: { fit, tta },
    ...(a.k ? { k: intArg(a.k, 'k', 3) } : {}),
    ...(a.transform ? { featureTransform: oneOf<FeatureTransformKind>(a.transform, 'transform', FEATURE_TRANSFORMS, 'center-l2') } : {}),
  });
  await saveHead(out, head);
  console.log(`head ${head.id} (${head.kind}) labels: ${head.labels.join(', ')}`);
  console.log(`unknown threshold: ${head.unknownThreshold} (${head.unknownMetric})`);
  console.log(`metrics: ${JSON.stringify(head.metrics)}`);
  console.log(`written: ${out}`);
} catch (err) {
  const code = typeof err === 'object' && err && 'code' in err ? String(err.code) : 'ERROR';
  fail(`${code}: ${(err as Error).message}`, 1);
}
