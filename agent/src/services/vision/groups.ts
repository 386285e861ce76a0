/**
 * Source-grouped cross-validation: photos of the same machine must never be on both
 * sides of a split, or accuracy is inflated by near-copies. Groups start from the source
 * key (training-set.ts) and are merged when two embeddings are near-duplicates.
 */
import { HeadError } from './errors.js';
import { dot, l2Normalize, seededRandom, shuffled, type Vec } from './vector.js';

/** Cosine similarity above which two photos count as the same shot / same machine. */
export const NEAR_DUPLICATE_COSINE = 0.95;

/** Union-find over the source keys plus near-duplicate pairs; returns one group id per item. */
export function mergeNearDuplicates(keys: readonly string[], embeddings: readonly Vec[], threshold = NEAR_DUPLICATE_COSINE): string[] {
  if (keys.length !== embeddings.length) throw new HeadError('TRAINING_DATA_INVALID', 'groups and embeddings differ in length');
  const parent = keys.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i] ?? i] ?? i;
    return i;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  const firstOfKey = new Map<string, number>();
  keys.forEach((k, i) => {
    const f = firstOfKey.get(k);
    if (f === undefined) firstOfKey.set(k, i);
    else union(f, i);
  });
  const unit = embeddings.map((e) => l2Normalize(e));
  for (let i = 0; i < unit.length; i++)
    for (let j = i + 1; j < unit.length; j++) if (dot(unit[i] ?? [], unit[j] ?? []) > threshold) union(i, j);
  return keys.map((_, i) => `g${find(i)}`);
}

/**
 * Fold per item such that a group is in exactly one fold. Groups are dealt, largest first,
 * to the fold that has the fewest items of the group's majority label (keeps folds roughly
 * stratified); ties are broken by a seeded shuffle.
 */
export function groupedFolds(labels: readonly string[], groups: readonly string[], folds: number, seed: number): number[] {
  const members = new Map<string, number[]>();
  groups.forEach((g, i) => members.set(g, [...(members.get(g) ?? []), i]));
  const rand = seededRandom(seed);
  const order = shuffled([...members.keys()].sort(), rand).sort((a, b) => (members.get(b)?.length ?? 0) - (members.get(a)?.length ?? 0));
  const perFoldLabel = Array.from({ length: folds }, () => new Map<string, number>());
  const perFold = new Array<number>(folds).fill(0);
  const fold = new Array<number>(labels.length).fill(0);
  for (const g of order) {
    const idx = members.get(g) ?? [];
    const counts = new Map<string, number>();
    for (const i of idx) counts.set(labels[i] ?? '', (counts.get(labels[i] ?? '') ?? 0) + 1);
    const major = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
    let best = 0;
    for (let f = 1; f < folds; f++) {
      const a = perFoldLabel[f]?.get(major) ?? 0;
      const b = perFoldLabel[best]?.get(major) ?? 0;
      if (a < b || (a === b && (perFold[f] ?? 0) < (perFold[best] ?? 0))) best = f;
    }
    for (const i of idx) fold[i] = best;
    perFold[best] = (perFold[best] ?? 0) + idx.length;
    for (const [l, c] of counts) perFoldLabel[best]?.set(l, (perFoldLabel[best]?.get(l) ?? 0) + c);
  }
  return fold;
}
