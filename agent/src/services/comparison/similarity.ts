/** Cosine similarity of embeddings and best match over candidates. */
import { ComparisonError, EmbeddingLengthMismatchError } from './errors.js';

/** An embedding: JSON numbers, or a Float32Array straight from the photo history's rows (device/history.ts). */
export type Embedding = ArrayLike<number>;

export interface Candidate {
  sha256: string;
  embedding: Embedding;
  source: 'reference' | 'history';
  takenAt?: string;
}

export interface BestMatch {
  sha256: string;
  similarity: number;
  source: 'reference' | 'history';
  takenAt?: string;
}

/** Cosine similarity in [-1, 1]; 0 when either vector is all zeros. */
export function cosineSimilarity(a: Embedding, b: Embedding, sha256?: string): number {
  return similarityTo(a)(b, sha256);
}

/**
 * Cosine similarity of one vector to many: its norm is computed once, not once per candidate
 * (a comparison scores up to comparison.historyPerMachine earlier photos; bench/comparison.bench.ts).
 */
function similarityTo(a: Embedding): (b: Embedding, sha256?: string) => number {
  let na = 0;
  for (let i = 0; i < a.length; i++) na += (a[i] as number) * (a[i] as number);
  return (b, sha256) => {
    if (a.length !== b.length) throw new EmbeddingLengthMismatchError(a.length, b.length, sha256);
    if (a.length === 0) throw new ComparisonError('INVALID_EMBEDDING', 'Embedding is empty; pass the vision model embedding vector.');
    let dot = 0, nb = 0;
    for (let i = 0; i < b.length; i++) {
      const y = b[i] as number;
      dot += (a[i] as number) * y;
      nb += y * y;
    }
    // A NaN or infinity anywhere leaves a sum non-finite: one check here, not one per value.
    if (!Number.isFinite(dot + na + nb)) throw invalidValues(a, b);
    if (na === 0 || nb === 0) return 0;
    return Math.max(-1, Math.min(1, dot / Math.sqrt(na * nb)));
  };
}

function invalidValues(a: Embedding, b: Embedding): ComparisonError {
  for (const v of [a, b]) {
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i] as number)) return new ComparisonError('INVALID_EMBEDDING', `Embedding holds a non-finite value at index ${i}; re-run recognition.`);
    }
  }
  return new ComparisonError('INVALID_EMBEDDING', 'Embedding values are too large to compare (their squares overflow); re-run recognition.');
}

/**
 * Highest-similarity candidate, optionally restricted to one source. Candidates
 * whose sha256 equals `excludeSha256` (the photo itself) are skipped.
 */
export function bestMatch(
  embedding: Embedding,
  candidates: readonly Candidate[],
  opts: { source?: 'reference' | 'history'; excludeSha256?: string } = {},
): BestMatch | null {
  let best: BestMatch | null = null;
  const similarity = similarityTo(embedding);
  for (const c of candidates) {
    if (opts.source && c.source !== opts.source) continue;
    if (opts.excludeSha256 && c.sha256 === opts.excludeSha256) continue;
    const s = similarity(c.embedding, c.sha256);
    if (!best || s > best.similarity) {
      best = { sha256: c.sha256, similarity: s, source: c.source, ...(c.takenAt ? { takenAt: c.takenAt } : {}) };
    }
  }
  return best;
}
