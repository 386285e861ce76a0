/** Train-on-split / test-on-rest evaluation of a head over precomputed embeddings. */
import { trainHead, predictHead, UNKNOWN, type HeadTrainOptions, type LabelledEmbedding } from './head.js';
import type { HeadFile } from './head-format.js';
import { confusionMatrix, perClassStats, type ClassStats, type ConfusionMatrix } from './metrics.js';

export interface EvalOutcome {
  head: HeadFile;
  predictions: { file?: string | undefined; truth: string; predicted: string; bestType: string; confidence: number; reason?: string | undefined }[];
  confusion: ConfusionMatrix;
  stats: ClassStats[];
  /** Machine photos: head's best type (ignoring the unknown decision) is right. */
  top1: number;
  /** Machine photos: reported machineType is right (not 'unknown', not wrong). */
  top1Accepted: number;
  /** Negative photos reported as 'unknown'. */
  negativesUnknown: number;
  machineCount: number;
  negativeCount: number;
}

export function evaluateSplit(
  train: readonly LabelledEmbedding[],
  test: readonly LabelledEmbedding[],
  opts: HeadTrainOptions,
  negativeLabel = 'negative',
): EvalOutcome {
  const head = trainHead(train, opts);
  const predictions = test.map((s) => {
    const p = predictHead(head, s.embedding);
    return {
      file: s.file,
      truth: s.label === negativeLabel ? UNKNOWN : s.label,
      predicted: p.machineType,
      bestType: p.best.label,
      confidence: p.confidence,
      reason: p.unknownReason,
    };
  });
  const labels = [...head.labels, UNKNOWN];
  const confusion = confusionMatrix(predictions, labels);
  const machines = predictions.filter((p) => p.truth !== UNKNOWN);
  const negatives = predictions.filter((p) => p.truth === UNKNOWN);
  return {
    head,
    predictions,
    confusion,
    stats: perClassStats(confusion),
    top1: machines.filter((p) => p.bestType === p.truth).length / Math.max(1, machines.length),
    top1Accepted: machines.filter((p) => p.predicted === p.truth).length / Math.max(1, machines.length),
    negativesUnknown: negatives.filter((p) => p.predicted === UNKNOWN).length / Math.max(1, negatives.length),
    machineCount: machines.length,
    negativeCount: negatives.length,
  };
}
