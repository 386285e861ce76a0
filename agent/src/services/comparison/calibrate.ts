/**
 * calibrateSimilarity: suggests similarityMatch / similarityMismatch from labelled
 * embedding pairs (same machine vs different machine), once the vision model's
 * embeddings are available. match = lowest threshold that keeps the false-match
 * rate (different-machine pairs at or above it) at or below `maxFalseMatch`; mismatch = the `mismatchQuantile`
 * of same-machine similarities (so few true pairs fall below it).
 */
import { cosineSimilarity } from './similarity.js';

export interface LabelledPair { a: readonly number[]; b: readonly number[]; sameMachine: boolean }

export interface SimilarityCalibration {
  similarityMatch: number;
  similarityMismatch: number;
  same: { n: number; min: number; median: number };
  different: { n: number; max: number; median: number };
}

const quantile = (xs: number[], p: number): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.floor(p * (s.length - 1))))] ?? NaN;
};

export function calibrateSimilarity(
  pairs: readonly LabelledPair[],
  opts: { maxFalseMatch?: number; mismatchQuantile?: number } = {},
): SimilarityCalibration {
  const same = pairs.filter((p) => p.sameMachine).map((p) => cosineSimilarity(p.a, p.b));
  const diff = pairs.filter((p) => !p.sameMachine).map((p) => cosineSimilarity(p.a, p.b));
  if (same.length === 0 || diff.length === 0) throw new RangeError('calibrateSimilarity needs both same-machine and different-machine pairs.');
  // smallest threshold with at most floor(maxFalseMatch * n) different-machine pairs at or above it
  const desc = [...diff].sort((x, y) => y - x);
  const allowed = Math.floor((opts.maxFalseMatch ?? 0.01) * desc.length);
  const match = Math.min(1, (desc[allowed] as number) + 1e-4);
  const mismatch = Math.min(match, quantile(same, opts.mismatchQuantile ?? 0.05));
  return {
    similarityMatch: Number(match.toFixed(4)),
    similarityMismatch: Number(mismatch.toFixed(4)),
    same: { n: same.length, min: Math.min(...same), median: quantile(same, 0.5) },
    different: { n: diff.length, max: Math.max(...diff), median: quantile(diff, 0.5) },
  };
}
