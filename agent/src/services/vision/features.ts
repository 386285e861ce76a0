/**
 * Feature transform applied to (already L2-normalised) embeddings before the
 * head. Fitted on the training set and stored in the head file.
 *  - l2:          use as is
 *  - center-l2:   subtract the training mean, re-normalise (better cosine geometry)
 *  - standardize: z-score per dimension (good for logistic regression)
 */
import { l2Normalize, meanVector, roundArray, stdVector, type Vec } from './vector.js';

export type FeatureTransformKind = 'l2' | 'center-l2' | 'standardize';
export const FEATURE_TRANSFORMS: readonly FeatureTransformKind[] = ['l2', 'center-l2', 'standardize'];

export interface FeatureTransform {
  transform: FeatureTransformKind;
  mean?: number[] | undefined;
  scale?: number[] | undefined;
}

export function fitFeatureTransform(kind: FeatureTransformKind, rows: readonly Vec[]): FeatureTransform {
  if (kind === 'l2') return { transform: 'l2' };
  const mean = meanVector(rows);
  if (kind === 'center-l2') return { transform: kind, mean: roundArray(mean, 6) };
  return { transform: kind, mean: roundArray(mean, 6), scale: roundArray(stdVector(rows, mean), 6) };
}

export function applyFeatureTransform(t: FeatureTransform, v: Vec): Float32Array {
  const x = Float32Array.from(v);
  if (t.transform === 'l2') return x;
  const mean = t.mean ?? [];
  for (let i = 0; i < x.length; i++) x[i] = (x[i] ?? 0) - (mean[i] ?? 0);
  if (t.transform === 'center-l2') return l2Normalize(x);
  const scale = t.scale ?? [];
  for (let i = 0; i < x.length; i++) x[i] = (x[i] ?? 0) / (scale[i] ?? 1);
  return x;
}
