/**
 * Classification head on backbone embeddings: training (k-NN or logistic
 * regression), calibration on out-of-fold predictions (temperature scaling of the
 * class scores, then the unknown threshold; folds are source-grouped when samples
 * carry a group, see groups.ts), and prediction with unknown detection.
 */
import { createHash } from 'node:crypto';
import { predictKnn, trainKnn, type KnnParameters } from './classifier-knn.js';
import { logitsLogreg, trainLogreg, type LogregParameters } from './classifier-logreg.js';
import { trainRidge } from './classifier-ridge.js';
import { groupedFolds } from './groups.js';
import { HeadError } from './errors.js';
import { applyFeatureTransform, fitFeatureTransform, type FeatureTransformKind } from './features.js';
import { HEAD_FORMAT, HEAD_VERSION, type HeadFile, type HeadKind } from './head-format.js';
import type { FitMode } from './preprocess.js';
import { argmax, l2Normalize, seededRandom, shuffled, softmax, type Vec } from './vector.js';

export const UNKNOWN = 'unknown';

export interface LabelledEmbedding {
  label: string;
  /** L2-normalised backbone embedding. */
  embedding: Vec;
  file?: string;
  /** Source group (groups.ts): with groups, calibration folds never split a group. */
  group?: string;
  /** 'site' / 'catalogue' (training-set.ts): weighted by HeadTrainOptions.domainWeights. */
  domain?: string;
}

export interface HeadTrainOptions {
  kind: HeadKind;
  /** Folder name of the "no machine" photos; they become an extra class and calibrate the unknown threshold. */
  negativeLabel?: string;
  featureTransform?: FeatureTransformKind;
  k?: number;
  temperature?: number;
  l2?: number;
  iterations?: number;
  learningRate?: number;
  seed?: number;
  /** Folds for the out-of-fold calibration of the unknown threshold (0 = skip, threshold from training fit). */
  calibrationFolds?: number;
  /** Training weight per sample domain (default 1): e.g. {catalogue: 0.3} when site photos matter most. */
  domainWeights?: Record<string, number>;
  /** Calibrate temperature/threshold and report CV metrics on this domain only (default 'site' if present). */
  calibrationDomain?: string;
  /**
   * How the linear ('logreg') head is fitted: 'gd' = logistic loss by gradient descent,
   * 'ridge' = squared loss solved exactly (classifier-ridge.ts; probabilities then come
   * from the out-of-fold temperature). Default 'gd'.
   */
  solver?: 'gd' | 'ridge';
  /** Recorded in the head (build:head skips retraining when it matches). */
  dataFingerprint?: string;
  /** Fit a temperature on out-of-fold scores (default true; needs calibrationFolds ≥ 2). */
  temperatureScaling?: boolean;
  imagesDir: string;
  backbone: { id: string; version: string; embeddingDim: number };
  preprocessing: { fit: FitMode; tta: boolean };
}

export const DEFAULT_HEAD_OPTIONS = {
  negativeLabel: 'negative',
  knn: { featureTransform: 'center-l2' as FeatureTransformKind, k: 3, temperature: 0.05 },
  // center-l2 + weak penalty + large step measured best on the test photos (README.md).
  logreg: { featureTransform: 'center-l2' as FeatureTransformKind, l2: 1e-3, iterations: 300, learningRate: 4 },
  calibrationFolds: 5,
  seed: 1,
};

interface ClassifierCommon {
  classes: string[];
  labels: string[];
  negativeLabel: string | null;
  features: HeadFile['features'];
}
type Classifier = ClassifierCommon &
  ({ kind: 'knn'; parameters: KnnParameters } | { kind: 'logreg'; parameters: LogregParameters });
type FittedClassifier = Classifier;

export interface HeadPrediction {
  machineType: string;
  confidence: number;
  unknownReason?: string;
  topK: { label: string; score: number }[];
  /** Raw scores before the unknown decision (for evaluation). */
  best: { label: string; probability: number; score: number; negativeProbability: number };
}

function resolveOptions(o: HeadTrainOptions) {
  const d = o.kind === 'knn' ? DEFAULT_HEAD_OPTIONS.knn : DEFAULT_HEAD_OPTIONS.logreg;
  return {
    negativeLabel: o.negativeLabel ?? DEFAULT_HEAD_OPTIONS.negativeLabel,
    featureTransform: o.featureTransform ?? d.featureTransform,
    k: o.k ?? DEFAULT_HEAD_OPTIONS.knn.k,
    temperature: o.temperature ?? DEFAULT_HEAD_OPTIONS.knn.temperature,
    l2: o.l2 ?? DEFAULT_HEAD_OPTIONS.logreg.l2,
    iterations: o.iterations ?? DEFAULT_HEAD_OPTIONS.logreg.iterations,
    learningRate: o.learningRate ?? DEFAULT_HEAD_OPTIONS.logreg.learningRate,
    seed: o.seed ?? DEFAULT_HEAD_OPTIONS.seed,
    calibrationFolds: o.calibrationFolds ?? DEFAULT_HEAD_OPTIONS.calibrationFolds,
  };
}

function fitClassifier(samples: readonly LabelledEmbedding[], o: HeadTrainOptions): FittedClassifier {
  const r = resolveOptions(o);
  const labels = [...new Set(samples.map((s) => s.label).filter((l) => l !== r.negativeLabel))].sort();
  if (labels.length < 1) {
    throw new HeadError('TRAINING_DATA_INVALID', 'need photos of at least one machine type (one folder per type) to train a head');
  }
  const hasNeg = samples.some((s) => s.label === r.negativeLabel);
  const classes = hasNeg ? [...labels, r.negativeLabel] : [...labels];
  if (classes.length < 2) {
    throw new HeadError(
      'TRAINING_DATA_INVALID',
      `only one class ('${labels[0]}') present: add a second machine type or a '${r.negativeLabel}/' folder of photos without machines`,
    );
  }
  const raw = samples.map((s) => l2Normalize(s.embedding));
  const features = fitFeatureTransform(r.featureTransform, raw);
  const x = raw.map((v) => applyFeatureTransform(features, v));
  const y = samples.map((s) => classes.indexOf(s.label));
  const common = { classes, labels, negativeLabel: hasNeg ? r.negativeLabel : null, features };
  const weights = samples.map((s) => o.domainWeights?.[s.domain ?? ''] ?? 1);
  return o.kind === 'knn'
    ? { ...common, kind: 'knn', parameters: trainKnn(x, y, { k: r.k, temperature: r.temperature }) }
    : {
        ...common,
        kind: 'logreg',
        parameters:
          o.solver === 'ridge'
            ? trainRidge(x, y, classes.length, { l2: r.l2, sampleWeights: weights })
            : trainLogreg(x, y, classes.length, { l2: r.l2, iterations: r.iterations, learningRate: r.learningRate, sampleWeights: weights }).parameters,
      };
}

/** Class scores before the softmax: logreg logits, k-NN log-probabilities. */
function classScores(c: Classifier, embedding: Vec): { scores: number[]; classMaxSim: number[] | null } {
  const x = applyFeatureTransform(c.features, l2Normalize(embedding));
  if (c.kind === 'knn') {
    const p = predictKnn(c.parameters, c.classes.length, x);
    return { scores: p.probs.map((v) => Math.log(Math.max(1e-9, v))), classMaxSim: p.classMaxSim };
  }
  return { scores: logitsLogreg(c.parameters, x), classMaxSim: null };
}

const scaled = (scores: readonly number[], temperature: number): number[] => softmax(scores.map((v) => v / temperature));

interface RawDecision {
  bestLabel: string;
  probability: number;
  /** Compared with the unknown threshold: probability (logreg) or cosine similarity (knn). */
  score: number;
  negativeProbability: number;
  topK: { label: string; score: number }[];
}

function rawDecision(c: Classifier, embedding: Vec, temperature = 1): RawDecision {
  const { scores, classMaxSim } = classScores(c, embedding);
  return decisionFromScores(c, scores, classMaxSim, temperature);
}

function decisionFromScores(c: Classifier, scores: readonly number[], classMaxSim: number[] | null, temperature: number): RawDecision {
  const probs = scaled(scores, temperature);
  const machine = c.labels.map((l) => probs[c.classes.indexOf(l)] ?? 0);
  const b = argmax(machine);
  const bestLabel = c.labels[b] ?? UNKNOWN;
  const probability = machine[b] ?? 0;
  const negIdx = c.negativeLabel === null ? -1 : c.classes.indexOf(c.negativeLabel);
  const negativeProbability = negIdx >= 0 ? (probs[negIdx] ?? 0) : 0;
  const score = classMaxSim ? (classMaxSim[c.classes.indexOf(bestLabel)] ?? -1) : probability;
  const topK = c.labels
    .map((label, i) => ({ label, score: machine[i] ?? 0 }))
    .sort((a, b2) => b2.score - a.score)
    .slice(0, 3);
  return { bestLabel, probability, score, negativeProbability, topK };
}

/**
 * How an `unknown` whose photo is closest to the photos without a machine starts its reason: the
 * comparison reads it (comparison/service.ts), since the result schema has no field for it.
 */
export const NO_MACHINE_REASON = 'no machine';

function decide(c: Classifier, threshold: number, metric: HeadFile['unknownMetric'], d: RawDecision): HeadPrediction {
  const best = { label: d.bestLabel, probability: d.probability, score: d.score, negativeProbability: d.negativeProbability };
  const base = { topK: d.topK, best };
  if (d.negativeProbability >= d.probability && c.negativeLabel !== null) {
    return {
      ...base,
      machineType: UNKNOWN,
      confidence: d.negativeProbability,
      unknownReason: `${NO_MACHINE_REASON}: closest to the '${c.negativeLabel}' examples (p=${d.negativeProbability.toFixed(2)}; best type ${d.bestLabel} p=${d.probability.toFixed(2)})`,
    };
  }
  if (d.score < threshold) {
    const why =
      metric === 'similarity'
        ? `far from every known type: nearest ${d.bestLabel} example has cosine similarity ${d.score.toFixed(3)} < calibrated threshold ${threshold.toFixed(3)}`
        : `low confidence: best type ${d.bestLabel} p=${d.probability.toFixed(2)} < calibrated threshold ${threshold.toFixed(2)}`;
    return { ...base, machineType: UNKNOWN, confidence: 1 - d.probability, unknownReason: why };
  }
  return { ...base, machineType: d.bestLabel, confidence: d.probability };
}

export function predictHead(head: HeadFile, embedding: Vec): HeadPrediction {
  if (embedding.length !== head.source.backbone.embeddingDim) {
    throw new HeadError(
      'HEAD_MISMATCH',
      `embedding has ${embedding.length} dimensions but head ${head.id} expects ${head.source.backbone.embeddingDim} (trained on ${head.source.backbone.id}); re-train the head for this model`,
    );
  }
  return decide(head, head.unknownThreshold, head.unknownMetric, rawDecision(head, embedding, head.calibration?.temperature ?? 1));
}

/** Stratified fold assignment, deterministic for a seed. */
export function stratifiedFolds(labels: readonly string[], folds: number, seed: number): number[] {
  const rand = seededRandom(seed);
  const fold = new Array<number>(labels.length).fill(0);
  const byLabel = new Map<string, number[]>();
  labels.forEach((l, i) => byLabel.set(l, [...(byLabel.get(l) ?? []), i]));
  let offset = 0;
  for (const l of [...byLabel.keys()].sort()) {
    for (const [j, i] of shuffled(byLabel.get(l) ?? [], rand).entries()) fold[i] = (offset + j) % folds;
    offset += byLabel.get(l)?.length ?? 0;
  }
  return fold;
}

interface Calibration {
  threshold: number;
  temperature: number;
  metrics: Record<string, number>;
}

/**
 * Chooses the unknown threshold that maximises the mean of
 * (machine photos accepted with the right type) and (negative photos rejected),
 * using out-of-fold decisions so the scores are not optimistic.
 */
export function chooseThreshold(
  points: { isNegative: boolean; correct: boolean; score: number; negWins: boolean }[],
): { threshold: number; objective: number; machineAccepted: number; negativeRejected: number } {
  const machines = points.filter((p) => !p.isNegative);
  const negatives = points.filter((p) => p.isNegative);
  const scores = [...new Set(points.map((p) => p.score))].sort((a, b) => a - b);
  const candidates = [-Infinity, ...scores.slice(0, -1).map((s, i) => (s + (scores[i + 1] ?? s)) / 2), Infinity];
  let best = { threshold: -Infinity, objective: -1, machineAccepted: 0, negativeRejected: 0 };
  for (const t of candidates) {
    const acc = machines.filter((p) => p.correct && !p.negWins && p.score >= t).length / Math.max(1, machines.length);
    const rej = negatives.length ? negatives.filter((p) => p.negWins || p.score < t).length / negatives.length : 1;
    // With no negatives, prefer keeping 95% of correct machines rather than a degenerate threshold.
    const objective = negatives.length ? (acc + rej) / 2 : acc;
    if (objective > best.objective + 1e-9) best = { threshold: t, objective, machineAccepted: acc, negativeRejected: rej };
  }
  if (!negatives.length) {
    const correct = machines.filter((p) => p.correct).map((p) => p.score).sort((a, b) => a - b);
    best.threshold = correct[Math.floor(correct.length * 0.05)] ?? -Infinity;
  }
  if (!Number.isFinite(best.threshold)) best.threshold = best.threshold > 0 ? 1 : -1;
  return best;
}

/** Negative log-likelihood of the true classes under softmax(scores / T). */
function nll(points: readonly { scores: readonly number[]; y: number }[], t: number): number {
  let s = 0;
  for (const p of points) s -= Math.log(Math.max(1e-12, scaled(p.scores, t)[p.y] ?? 0));
  return s / Math.max(1, points.length);
}

/** Temperature minimising the out-of-fold NLL (golden-section search on log T in [1e-3, 1e3]; ridge scores need T ≪ 1). */
export function fitTemperature(points: readonly { scores: readonly number[]; y: number }[]): number {
  if (points.length < 2) return 1;
  let lo = Math.log(1e-3);
  let hi = Math.log(1e3);
  const g = (Math.sqrt(5) - 1) / 2;
  for (let i = 0; i < 60; i++) {
    const a = hi - g * (hi - lo);
    const b = lo + g * (hi - lo);
    if (nll(points, Math.exp(a)) <= nll(points, Math.exp(b))) hi = b;
    else lo = a;
  }
  return Math.exp((lo + hi) / 2);
}

/**
 * Expected calibration error (10 equal-width bins) of the reported confidence vs whether
 * the report was right; the reliability check of the calibration.
 */
export function expectedCalibrationError(points: readonly { confidence: number; correct: boolean }[], bins = 10): number {
  let e = 0;
  for (let b = 0; b < bins; b++) {
    const inBin = points.filter((p) => Math.min(bins - 1, Math.floor(p.confidence * bins)) === b);
    if (!inBin.length) continue;
    const conf = inBin.reduce((s, p) => s + p.confidence, 0) / inBin.length;
    const acc = inBin.filter((p) => p.correct).length / inBin.length;
    e += (inBin.length / points.length) * Math.abs(conf - acc);
  }
  return e;
}

export interface OutOfFoldPoint {
  index: number;
  label: string;
  scores: number[];
  classMaxSim: number[] | null;
}

/** Out-of-fold class scores for every sample (folds source-grouped when samples have groups). */
export function outOfFoldScores(samples: readonly LabelledEmbedding[], o: HeadTrainOptions, folds: number, seed: number): OutOfFoldPoint[] {
  const labels = samples.map((s) => s.label);
  const fold = samples.some((s) => s.group !== undefined)
    ? groupedFolds(labels, samples.map((s, i) => s.group ?? `#${i}`), folds, seed)
    : stratifiedFolds(labels, folds, seed);
  const out: OutOfFoldPoint[] = [];
  for (let f = 0; f < folds; f++) {
    const train = samples.filter((_, i) => fold[i] !== f);
    const test = samples.map((s, i) => [s, i] as const).filter(([, i]) => fold[i] === f);
    if (!test.length) continue;
    let c: FittedClassifier;
    try {
      c = fitClassifier(train, { ...o, calibrationFolds: 0 });
    } catch {
      continue; // a fold without enough classes: its samples get no out-of-fold score
    }
    for (const [s, i] of test) {
      const { scores, classMaxSim } = classScores(c, s.embedding);
      // Map the fold classifier's classes onto the full head's classes (a fold may lack a class).
      out.push({ index: i, label: s.label, scores: remap(c.classes, scores), classMaxSim: classMaxSim ? remap(c.classes, classMaxSim, -1) : null });
    }
  }
  return out.sort((a, b) => a.index - b.index);

  function remap(classes: readonly string[], v: readonly number[], missing = -1e9): number[] {
    const all = [...new Set(samples.map((s) => s.label))].sort();
    return all.map((l) => (classes.includes(l) ? (v[classes.indexOf(l)] ?? missing) : missing));
  }
}

function calibrate(samples: readonly LabelledEmbedding[], o: HeadTrainOptions, fitted: FittedClassifier): Calibration {
  const r = resolveOptions(o);
  const folds = Math.min(r.calibrationFolds, samples.length);
  const domain = o.calibrationDomain ?? (samples.some((s) => s.domain === 'site') ? 'site' : undefined);
  const inDomain = (s: LabelledEmbedding): boolean => domain === undefined || s.domain === undefined || s.domain === domain;
  // Classes of the full head in sorted order = the order outOfFoldScores remaps to.
  const sortedClasses = [...new Set(samples.map((s) => s.label))].sort();
  const toHeadOrder = (v: readonly number[], missing: number): number[] => fitted.classes.map((c) => v[sortedClasses.indexOf(c)] ?? missing);
  let oof: { label: string; scores: number[]; classMaxSim: number[] | null }[];
  if (folds >= 2) {
    oof = outOfFoldScores(samples, o, folds, r.seed)
      .filter((p) => inDomain(samples[p.index] as LabelledEmbedding))
      .map((p) => ({ label: p.label, scores: toHeadOrder(p.scores, -1e9), classMaxSim: p.classMaxSim ? toHeadOrder(p.classMaxSim, -1) : null }));
  } else {
    oof = samples.filter(inDomain).map((s) => ({ label: s.label, ...classScores(fitted, s.embedding) }));
  }
  const temperature =
    folds >= 2 && o.temperatureScaling !== false ? fitTemperature(oof.map((p) => ({ scores: p.scores, y: fitted.classes.indexOf(p.label) }))) : 1;
  const decisions = oof.map((p) => decisionFromScores(fitted, p.scores, p.classMaxSim, temperature));
  const points = oof.map((p, i) => {
    const d = decisions[i] as RawDecision;
    return {
      isNegative: p.label === fitted.negativeLabel,
      correct: d.bestLabel === p.label,
      score: d.score,
      negWins: fitted.negativeLabel !== null && d.negativeProbability >= d.probability,
    };
  });
  const t = chooseThreshold(points);
  // No rejection needed on the calibration data: use the metric's lower bound.
  if (t.threshold <= -1 || !Number.isFinite(t.threshold)) t.threshold = o.kind === 'knn' ? -1 : 0;
  const machinePts = points.filter((p) => !p.isNegative);
  const cvTop1 = machinePts.filter((p) => p.correct).length / Math.max(1, machinePts.length);
  // Reliability of the reported confidence on out-of-fold predictions, before/after scaling.
  const reliability = (temp: number): number =>
    expectedCalibrationError(
      oof.map((p) => {
        const dd = decide(fitted, t.threshold, o.kind === 'knn' ? 'similarity' : 'probability', decisionFromScores(fitted, p.scores, p.classMaxSim, temp));
        return { confidence: dd.confidence, correct: dd.machineType === (p.label === fitted.negativeLabel ? UNKNOWN : p.label) };
      }),
    );
  return {
    threshold: t.threshold,
    temperature,
    metrics: {
      calibrationFolds: folds >= 2 ? folds : 0,
      calibrationSamples: oof.length,
      cvTop1,
      cvMachineAcceptedCorrect: t.machineAccepted,
      cvNegativeUnknownRate: t.negativeRejected,
      cvEceUncalibrated: reliability(1),
      cvEce: reliability(temperature),
    },
  };
}

export function trainHead(samples: readonly LabelledEmbedding[], o: HeadTrainOptions): HeadFile {
  const r = resolveOptions(o);
  const dim = o.backbone.embeddingDim;
  const bad = samples.find((s) => s.embedding.length !== dim);
  if (bad) {
    throw new HeadError('TRAINING_DATA_INVALID', `embedding of ${bad.file ?? bad.label} has ${bad.embedding.length} dims, expected ${dim}`);
  }
  const fitted = fitClassifier(samples, o);
  const cal = calibrate(samples, o, fitted);
  const counts: Record<string, number> = {};
  for (const s of samples) counts[s.label] = (counts[s.label] ?? 0) + 1;
  const head0 = {
    format: HEAD_FORMAT,
    version: HEAD_VERSION,
    id: '',
    kind: o.kind,
    labels: fitted.labels,
    classes: fitted.classes,
    negativeLabel: fitted.negativeLabel,
    features: fitted.features,
    preprocessing: o.preprocessing,
    unknownThreshold: Number(cal.threshold.toFixed(6)),
    calibration: { temperature: Number(cal.temperature.toFixed(6)), method: 'temperature scaling on out-of-fold predictions' },
    unknownMetric: o.kind === 'knn' ? 'similarity' : 'probability',
    parameters: fitted.parameters,
    source: { imagesDir: o.imagesDir, counts, backbone: o.backbone, ...(o.dataFingerprint ? { dataFingerprint: o.dataFingerprint } : {}) },
    metrics: {} as Record<string, number | string | null>,
    trainedAt: new Date().toISOString(),
  } as HeadFile;
  // Training-set (resubstitution) accuracy, for information only.
  const trainCorrect = samples.filter((s) => predictHead(head0, s.embedding).machineType === (s.label === fitted.negativeLabel ? UNKNOWN : s.label)).length;
  head0.metrics = {
    ...cal.metrics,
    trainAccuracy: trainCorrect / Math.max(1, samples.length),
    featureTransform: r.featureTransform,
    ...(o.kind === 'knn' ? { k: r.k, temperature: r.temperature } : o.solver === 'ridge' ? { l2: r.l2, solver: 'ridge' } : { l2: r.l2, iterations: r.iterations, solver: 'gd' }),
    seed: r.seed,
    ...(o.domainWeights ? { domainWeights: JSON.stringify(o.domainWeights) } : {}),
  };
  const hash = createHash('sha256').update(JSON.stringify(head0.parameters)).update(String(head0.unknownThreshold)).digest('hex');
  head0.id = `${o.kind}-${hash.slice(0, 10)}`;
  return head0;
}
