/**
 * Builds the default machine-type head: `npm run build:head`.
 *
 *   tsx agent/scripts/build-head.ts [--model DIR] [--site DIR] [--catalogue DIR|none] [--out FILE] [--force]
 *
 * Defaults: model = MODEL_DIR or ../shared/models/mobilenet_v2_100_224_quant, site photos =
 * TU_TESTDATA_DIR or ../shared/testdata/images, catalogue = ../shared/testdata/train,
 * out = dist/head/default-head.json (git-ignored: derived from photos of unknown licence).
 * Skips the work when the file exists and matches the backbone and the training data.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { buildDefaultHead, DEFAULT_HEAD_FILE } from '../src/services/vision/default-head.js';
import { defaultModelDir, fail, repoRoot, scriptArgs } from './cli-args.js';

const a = scriptArgs(
  { model: { type: 'string' }, site: { type: 'string' }, catalogue: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' } },
  `usage: npm run build:head -- [--model DIR] [--site DIR] [--catalogue DIR|none] [--out FILE] [--force]
  Trains the default machine-type head (agent/src/services/vision/default-head.ts) unless the one at --out
  was trained from the same model and photos; --force trains it again.`,
);
const shared = path.resolve(repoRoot, '../shared');
const out = path.resolve(a.out ?? path.join(repoRoot, DEFAULT_HEAD_FILE));
const src = {
  modelDir: path.resolve(a.model ?? defaultModelDir()),
  siteDir: path.resolve(a.site ?? process.env['TU_TESTDATA_DIR'] ?? path.join(shared, 'testdata/images')),
  catalogueDir: a.catalogue === 'none' ? undefined : path.resolve(a.catalogue ?? path.join(shared, 'testdata/train')),
};
const t0 = performance.now();
try {
  if (a.force) await rm(out, { force: true });
  const r = await buildDefaultHead(src, out, (l) => console.log(l));
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  const m = r.head.metrics;
  if (r.upToDate) console.log(`${path.relative(process.cwd(), out)} is up to date (backbone ${r.head.source.backbone.id} ${r.head.source.backbone.version}, data ${r.head.source.dataFingerprint}); ${s} s`);
  else {
    for (const f of r.failures) console.warn(`skipped ${f}`);
    console.log(`head ${r.head.id}: ${r.head.labels.length} types, counts ${JSON.stringify(r.head.source.counts)}`);
    console.log(
      `out-of-fold (source-grouped, site photos): top-1 ${m['cvTop1']}, negatives → unknown ${m['cvNegativeUnknownRate']}, ECE ${m['cvEce']} (uncalibrated ${m['cvEceUncalibrated']}), temperature ${r.head.calibration?.temperature}, unknown threshold ${r.head.unknownThreshold}`,
    );
    console.log(`written ${path.relative(process.cwd(), out)} for backbone ${r.head.source.backbone.id} ${r.head.source.backbone.version} in ${s} s`);
  }
} catch (err) {
  const code = typeof err === 'object' && err && 'code' in err ? String(err.code) : 'ERROR';
  fail(`${code}: ${(err as Error).message}`, 1);
}
