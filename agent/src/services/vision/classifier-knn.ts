/** Weighted cosine k-nearest-neighbour classifier over transformed, unit-length features. */
import { dot, roundArray, type Vec } from './vector.js';

export interface KnnParameters {
  k: number;
  /** Neighbour weight = exp(similarity / temperature). */
  temperature: number;
  /** Class index (into `classes`) of each stored example. */
  exampleClass: number[];
  vectors: number[][];
}

export interface KnnTrainOptions {
  k?: number;
  temperature?: number;
}

export function trainKnn(x: readonly Vec[], y: readonly number[], opts: KnnTrainOptions = {}): KnnParameters {
  return {
    k: opts.k ?? 3,
    temperature: opts.temperature ?? 0.1,
    exampleClass: [...y],
    vectors: x.map((v) => roundArray(v, 5)),
  };
}

export interface KnnPrediction {
  probs: number[];
  /** Highest cosine similarity to any stored example of each class. */
  classMaxSim: number[];
}

export function predictKnn(p: KnnParameters, numClasses: number, x: Vec): KnnPrediction {
  const sims = p.vectors.map((v) => dot(v, x));
  const classMaxSim = new Array<number>(numClasses).fill(-1);
  sims.forEach((s, i) => {
    const c = p.exampleClass[i] ?? 0;
    if (s > (classMaxSim[c] ?? -1)) classMaxSim[c] = s;
  });
  const order = sims.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0]);
  const k = Math.min(p.k, order.length);
  const votes = new Array<number>(numClasses).fill(0);
  const top = order[0]?.[0] ?? 0;
  for (let j = 0; j < k; j++) {
    const [s, i] = order[j] as readonly [number, number];
    const c = p.exampleClass[i] ?? 0;
    votes[c] = (votes[c] ?? 0) + Math.exp((s - top) / p.temperature);
  }
  const z = votes.reduce((a, b) => a + b, 0) || 1;
  return { probs: votes.map((v) => v / z), classMaxSim };
}
