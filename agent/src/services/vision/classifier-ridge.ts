/**
 * Ridge (least-squares) linear probe: one-hot targets, L2 penalty, per-sample weights,
 * solved exactly in the sample space (kernel form, n ≪ dim: 700 photos vs 1280-d) with a
 * Cholesky factorisation — ~100× faster than gradient-descent logistic regression here,
 * which makes grouped cross-validation of the default head affordable on a 2-core box.
 * Its scores are not probabilities: head.ts turns them into ones with a softmax whose
 * temperature is fitted on out-of-fold predictions. Output has LogregParameters' shape.
 */
import type { LogregParameters } from './classifier-logreg.js';
import { roundArray, type Vec } from './vector.js';

export interface RidgeTrainOptions {
  /** Penalty λ on the squared weights. */
  l2?: number;
  /** Balance classes by (weighted) count, like trainLogreg. */
  balanced?: boolean;
  sampleWeights?: readonly number[];
  /**
   * Shrink towards these weights instead of towards zero: minimise Σ wᵢ‖W xᵢ + b − yᵢ‖² +
   * λ‖W − W₀‖². The on-device refit (refit.ts) uses the shipped head as the prior, so a few
   * technician examples move the head near them and leave it alone elsewhere.
   */
  prior?: LogregParameters;
}

/** In-place Cholesky of a symmetric positive-definite n×n matrix (row-major); returns L (lower). */
function cholesky(a: Float64Array, n: number): Float64Array {
  for (let j = 0; j < n; j++) {
    let s = a[j * n + j] as number;
    for (let k = 0; k < j; k++) s -= (a[j * n + k] as number) ** 2;
    const d = Math.sqrt(Math.max(s, 1e-12));
    a[j * n + j] = d;
    for (let i = j + 1; i < n; i++) {
      let t = a[i * n + j] as number;
      for (let k = 0; k < j; k++) t -= (a[i * n + k] as number) * (a[j * n + k] as number);
      a[i * n + j] = t / d;
    }
  }
  return a;
}

/** Solves L Lᵀ x = b for each of the C columns of b (n×C, row-major), in place. */
function choleskySolve(l: Float64Array, n: number, b: Float64Array, C: number): void {
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < n; i++) {
      let s = b[i * C + c] as number;
      for (let k = 0; k < i; k++) s -= (l[i * n + k] as number) * (b[k * C + c] as number);
      b[i * C + c] = s / (l[i * n + i] as number);
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = b[i * C + c] as number;
      for (let k = i + 1; k < n; k++) s -= (l[k * n + i] as number) * (b[k * C + c] as number);
      b[i * C + c] = s / (l[i * n + i] as number);
    }
  }
}

/**
 * minimise Σ wᵢ‖W xᵢ + b − yᵢ‖² + λ‖W‖² (bias via a constant feature, lightly penalised too):
 * W = Xᵀα with α = (XXᵀ + λ·diag(1/w))⁻¹ Y.
 */
export function trainRidge(x: readonly Vec[], y: readonly number[], numClasses: number, opts: RidgeTrainOptions = {}): LogregParameters {
  const lambda = opts.l2 ?? 1e-2;
  const n = x.length;
  const d = x[0]?.length ?? 0;
  const C = numClasses;
  const extra = y.map((_, i) => opts.sampleWeights?.[i] ?? 1);
  const wCounts = new Array<number>(C).fill(0);
  y.forEach((c, i) => (wCounts[c] = (wCounts[c] ?? 0) + (extra[i] ?? 1)));
  const present = wCounts.filter((c) => c > 0).length;
  const wTotal = wCounts.reduce((a, b) => a + b, 0);
  const w = y.map((c, i) => (extra[i] ?? 1) * (opts.balanced === false ? 1 : wTotal / (present * Math.max(1e-12, wCounts[c] ?? 1))));
  const X = new Float64Array(n * d);
  x.forEach((row, i) => {
    for (let j = 0; j < d; j++) X[i * d + j] = row[j] ?? 0;
  });
  const K = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      // Four partial sums: the kernel is most of a refit's time (bench/refit.bench.ts).
      let s0 = 1; // constant feature for the bias
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      const io = i * d;
      const jo = j * d;
      let k = 0;
      for (; k + 3 < d; k += 4) {
        s0 += (X[io + k] as number) * (X[jo + k] as number);
        s1 += (X[io + k + 1] as number) * (X[jo + k + 1] as number);
        s2 += (X[io + k + 2] as number) * (X[jo + k + 2] as number);
        s3 += (X[io + k + 3] as number) * (X[jo + k + 3] as number);
      }
      for (; k < d; k++) s0 += (X[io + k] as number) * (X[jo + k] as number);
      const s = s0 + s1 + s2 + s3;
      K[i * n + j] = s;
      K[j * n + i] = s;
    }
  // A zero weight drops the sample (infinite ridge on it).
  for (let i = 0; i < n; i++) K[i * n + i] = (K[i * n + i] as number) + lambda / Math.max(1e-9, w[i] ?? 1);
  const Y = new Float64Array(n * C);
  y.forEach((c, i) => (Y[i * C + c] = 1));
  const W = new Float64Array(C * d);
  const b = new Float64Array(C);
  const prior = opts.prior;
  if (prior) {
    // Fit the residual of the prior's scores; the solution is then W₀ + Xᵀα.
    for (let c = 0; c < C; c++) {
      const row = prior.weights[c];
      b[c] = prior.bias[c] ?? 0;
      if (row) for (let k = 0; k < d; k++) W[c * d + k] = row[k] ?? 0;
    }
    for (let i = 0; i < n; i++)
      for (let c = 0; c < C; c++) {
        let s = b[c] as number;
        for (let k = 0; k < d; k++) s += (W[c * d + k] as number) * (X[i * d + k] as number);
        Y[i * C + c] = (Y[i * C + c] as number) - s;
      }
  }
  choleskySolve(cholesky(K, n), n, Y, C);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < C; c++) {
      const a = Y[i * C + c] as number;
      if (a === 0) continue;
      b[c] = (b[c] as number) + a;
      for (let k = 0; k < d; k++) W[c * d + k] = (W[c * d + k] as number) + a * (X[i * d + k] as number);
    }
  return { weights: Array.from({ length: C }, (_, c) => roundArray(W.subarray(c * d, (c + 1) * d), 6)), bias: roundArray(b, 6) };
}
