/**
 * Multinomial logistic regression (softmax regression) with L2 penalty and
 * class-balanced sample weights, trained by full-batch gradient descent with
 * Nesterov momentum. Plain TS: the data is tiny (tens of photos x 256 dims).
 */
import { roundArray, softmax, type Vec } from './vector.js';

export interface LogregParameters {
  weights: number[][]; // [classes][dim]
  bias: number[];
}

export interface LogregTrainOptions {
  l2?: number;
  iterations?: number;
  learningRate?: number;
  balanced?: boolean;
  /** Extra per-sample weight (e.g. catalogue vs site photos), multiplied with the class balance. */
  sampleWeights?: readonly number[];
}

export interface LogregTrainResult {
  parameters: LogregParameters;
  finalLoss: number;
}

export function trainLogreg(
  x: readonly Vec[],
  y: readonly number[],
  numClasses: number,
  opts: LogregTrainOptions = {},
): LogregTrainResult {
  const l2 = opts.l2 ?? 1e-2;
  const iters = opts.iterations ?? 300;
  const lr = opts.learningRate ?? 0.5;
  const n = x.length;
  const d = x[0]?.length ?? 0;
  const C = numClasses;
  const counts = new Array<number>(C).fill(0);
  for (const c of y) counts[c] = (counts[c] ?? 0) + 1;
  const present = counts.filter((c) => c > 0).length;
  // Class balance over the weighted counts, so down-weighting one domain does not skew the classes.
  const extra = y.map((_, i) => opts.sampleWeights?.[i] ?? 1);
  const wCounts = new Array<number>(C).fill(0);
  y.forEach((c, i) => (wCounts[c] = (wCounts[c] ?? 0) + (extra[i] ?? 1)));
  const wTotal = wCounts.reduce((a, b) => a + b, 0);
  const sw = y.map((c, i) => (extra[i] ?? 1) * (opts.balanced === false ? 1 : wTotal / (present * Math.max(1e-12, wCounts[c] ?? 1))));
  const swSum = sw.reduce((a, b) => a + b, 0);
  // Flat row-major buffers: X [n][d], W/look/v/g [C][d] (Float64 for stable sums).
  const X = new Float64Array(n * d);
  x.forEach((row, i) => {
    for (let j = 0; j < d; j++) X[i * d + j] = row[j] ?? 0;
  });
  const W = new Float64Array(C * d);
  const b = new Float64Array(C);
  const vW = new Float64Array(C * d);
  const vb = new Float64Array(C);
  const look = new Float64Array(C * d);
  const lookB = new Float64Array(C);
  const gW = new Float64Array(C * d);
  const gb = new Float64Array(C);
  const mom = 0.9;
  const p = new Float64Array(C);
  let loss = 0;
  for (let it = 0; it < iters; it++) {
    // Nesterov look-ahead point
    for (let k = 0; k < C * d; k++) look[k] = (W[k] as number) + mom * (vW[k] as number);
    for (let c = 0; c < C; c++) lookB[c] = (b[c] as number) + mom * (vb[c] as number);
    gW.fill(0);
    gb.fill(0);
    loss = 0;
    for (let i = 0; i < n; i++) {
      const xo = i * d;
      let mx = -Infinity;
      for (let c = 0; c < C; c++) {
        const wo = c * d;
        let s = lookB[c] as number;
        for (let j = 0; j < d; j++) s += (look[wo + j] as number) * (X[xo + j] as number);
        p[c] = s;
        if (s > mx) mx = s;
      }
      let z = 0;
      for (let c = 0; c < C; c++) {
        const e = Math.exp((p[c] as number) - mx);
        p[c] = e;
        z += e;
      }
      const yi = y[i] ?? 0;
      const wi = (sw[i] ?? 1) / swSum;
      loss -= wi * Math.log(Math.max(1e-12, (p[yi] as number) / z));
      for (let c = 0; c < C; c++) {
        const err = wi * ((p[c] as number) / z - (c === yi ? 1 : 0));
        if (err === 0) continue;
        const wo = c * d;
        for (let j = 0; j < d; j++) gW[wo + j] = (gW[wo + j] as number) + err * (X[xo + j] as number);
        gb[c] = (gb[c] as number) + err;
      }
    }
    for (let k = 0; k < C * d; k++) {
      const grad = (gW[k] as number) + l2 * (look[k] as number);
      vW[k] = mom * (vW[k] as number) - lr * grad;
      W[k] = (W[k] as number) + (vW[k] as number);
      loss += 0.5 * l2 * (W[k] as number) ** 2;
    }
    for (let c = 0; c < C; c++) {
      vb[c] = mom * (vb[c] as number) - lr * (gb[c] as number);
      b[c] = (b[c] as number) + (vb[c] as number);
    }
  }
  return {
    parameters: { weights: Array.from({ length: C }, (_, c) => roundArray(W.subarray(c * d, (c + 1) * d), 6)), bias: roundArray(b, 6) },
    finalLoss: loss,
  };
}

export function logitsLogreg(p: LogregParameters, x: Vec): number[] {
  return p.weights.map((w, c) => {
    let s = p.bias[c] ?? 0;
    for (let j = 0; j < w.length; j++) s += (w[j] ?? 0) * (x[j] ?? 0);
    return s;
  });
}

export function predictLogreg(p: LogregParameters, x: Vec): number[] {
  return softmax(logitsLogreg(p, x));
}
