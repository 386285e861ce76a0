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
  const counts = new Array<number>(numClasses).fill(0);
  for (const c of y) counts[c] = (counts[c] ?? 0) + 1;
  const present = counts.filter((c) => c > 0).length;
  const sw = y.map((c) => (opts.balanced === false ? 1 : n / (present * (counts[c] ?? 1))));
  const swSum = sw.reduce((a, b) => a + b, 0);
  const W = Array.from({ length: numClasses }, () => new Float64Array(d));
  const b = new Float64Array(numClasses);
  const vW = Array.from({ length: numClasses }, () => new Float64Array(d));
  const vb = new Float64Array(numClasses);
  const mom = 0.9;
  const gW = Array.from({ length: numClasses }, () => new Float64Array(d));
  const gb = new Float64Array(numClasses);
  let loss = 0;
  const logits = new Float64Array(numClasses);
  for (let it = 0; it < iters; it++) {
    // Nesterov look-ahead point
    const lookW = W.map((w, c) => w.map((v, j) => v + mom * (vW[c]?.[j] ?? 0)));
    const lookB = b.map((v, c) => v + mom * (vb[c] ?? 0));
    for (const g of gW) g.fill(0);
    gb.fill(0);
    loss = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[i] as Vec;
      for (let c = 0; c < numClasses; c++) {
        const w = lookW[c] as Float64Array;
        let s = lookB[c] ?? 0;
        for (let j = 0; j < d; j++) s += (w[j] ?? 0) * (xi[j] ?? 0);
        logits[c] = s;
      }
      const p = softmax(Array.from(logits));
      const yi = y[i] ?? 0;
      const wi = (sw[i] ?? 1) / swSum;
      loss -= wi * Math.log(Math.max(1e-12, p[yi] ?? 0));
      for (let c = 0; c < numClasses; c++) {
        const err = wi * ((p[c] ?? 0) - (c === yi ? 1 : 0));
        if (err === 0) continue;
        const g = gW[c] as Float64Array;
        for (let j = 0; j < d; j++) g[j] = (g[j] ?? 0) + err * (xi[j] ?? 0);
        gb[c] = (gb[c] ?? 0) + err;
      }
    }
    for (let c = 0; c < numClasses; c++) {
      const w = lookW[c] as Float64Array;
      const g = gW[c] as Float64Array;
      const v = vW[c] as Float64Array;
      const wc = W[c] as Float64Array;
      for (let j = 0; j < d; j++) {
        const grad = (g[j] ?? 0) + l2 * (w[j] ?? 0);
        v[j] = mom * (v[j] ?? 0) - lr * grad;
        wc[j] = (wc[j] ?? 0) + (v[j] ?? 0);
        loss += 0.5 * l2 * (wc[j] ?? 0) ** 2;
      }
      vb[c] = mom * (vb[c] ?? 0) - lr * (gb[c] ?? 0);
      b[c] = (b[c] ?? 0) + (vb[c] ?? 0);
    }
  }
  return {
    parameters: { weights: W.map((w) => roundArray(w, 6)), bias: roundArray(b, 6) },
    finalLoss: loss,
  };
}

export function predictLogreg(p: LogregParameters, x: Vec): number[] {
  const logits = p.weights.map((w, c) => {
    let s = p.bias[c] ?? 0;
    for (let j = 0; j < w.length; j++) s += (w[j] ?? 0) * (x[j] ?? 0);
    return s;
  });
  return softmax(logits);
}
