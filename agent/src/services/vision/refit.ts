/**
 * On-device refit of the machine-type head from technicians' labelled photos (the agent's
 * teach/ module stores them). The shipped linear head is the prior: ridge regression towards
 * its weights (classifier-ridge.ts `prior`), so each confirmed or corrected photo pulls the
 * head towards its label near that photo and leaves it as shipped far from it. The feature
 * transform, temperature and unknown threshold stay the shipped head's (they were calibrated
 * on held-out photos; a handful of device examples cannot recalibrate them).
 * Cost: an n×n kernel and its Cholesky factor (n = examples): 1.5–3 s for 1,000 on this box
 * (bench/refit.bench.ts); it runs in a thread of its own (refit-thread.ts), never on the
 * agent's event loop nor in the queue of photos.
 */
import { createHash } from 'node:crypto';
import { trainRidge } from './classifier-ridge.js';
import { HeadError } from './errors.js';
import { applyFeatureTransform } from './features.js';
import type { HeadFile } from './head-format.js';
import { l2Normalize, type Vec } from './vector.js';

export interface TeachingExample {
  /** A machine type, or 'negative' (no machine on the photo). */
  label: string;
  embedding: Vec;
}

export interface RefitSummary {
  /** Examples the refit used. */
  used: number;
  /** Examples whose label the head does not know or whose embedding has the wrong size. */
  skipped: number;
  ms: number;
  headId: string;
}

/** How far one example moves the head (λ of the ridge towards the shipped weights). Chosen in bench/refit.bench.ts. */
export const REFIT_L2 = 1;
/** The label technicians use for "no machine on this photo" (shared TEACH_LABELS). */
const NEGATIVE = 'negative';

export function refitHead(base: HeadFile, examples: readonly TeachingExample[], o: { l2?: number; now?: () => Date } = {}): { head: HeadFile; summary: RefitSummary } {
  const t0 = performance.now();
  if (base.kind !== 'logreg') {
    throw new HeadError('HEAD_INVALID', `the head ${base.id} is a ${base.kind} head; technicians' examples refit linear heads only (train one with npm run build:head)`);
  }
  const dim = base.source.backbone.embeddingDim;
  const x: Float32Array[] = [];
  const y: number[] = [];
  let skipped = 0;
  for (const e of examples) {
    const cls = base.classes.indexOf(e.label === NEGATIVE && base.negativeLabel ? base.negativeLabel : e.label);
    if (cls < 0 || e.embedding.length !== dim) {
      skipped++;
      continue;
    }
    x.push(applyFeatureTransform(base.features, l2Normalize(e.embedding)));
    y.push(cls);
  }
  if (x.length === 0) return { head: base, summary: { used: 0, skipped, ms: performance.now() - t0, headId: base.id } };
  const parameters = trainRidge(x, y, base.classes.length, { l2: o.l2 ?? REFIT_L2, balanced: false, prior: base.parameters });
  const hash = createHash('sha256').update(base.id).update(JSON.stringify(parameters.bias)).update(String(x.length)).digest('hex');
  const ms = performance.now() - t0;
  const head: HeadFile = {
    ...base,
    id: `${base.id}+device-${hash.slice(0, 8)}`,
    parameters,
    metrics: { ...base.metrics, refitBaseHead: base.id, refitExamples: x.length, refitMs: Math.round(ms) },
    trainedAt: (o.now?.() ?? new Date()).toISOString(),
  };
  return { head, summary: { used: x.length, skipped, ms, headId: head.id } };
}
