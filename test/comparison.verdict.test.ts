import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compare, DEFAULT_COMPARISON_THRESHOLDS } from '@tu/agent/internal/services/comparison/verdict';
import { bestMatch, cosineSimilarity, type Candidate } from '@tu/agent/internal/services/comparison/similarity';
import { ComparisonError } from '@tu/agent/internal/services/comparison/errors';
import { calibrateSimilarity } from '@tu/agent/internal/services/comparison/calibrate';

/** Deterministic pseudo-embeddings: base vector + scaled noise. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5;
}
function vec(seed: number, n = 256): number[] { const r = rng(seed); return Array.from({ length: n }, () => r()); }
function near(v: number[], noise: number, seed: number): number[] { const r = rng(seed); return v.map((x) => x + noise * r()); }

const machineA = vec(1);
const machineB = vec(2);
const refs: Candidate[] = [
  { sha256: 'ref-a1', embedding: near(machineA, 0.3, 10), source: 'reference' },
  { sha256: 'ref-a2', embedding: near(machineA, 0.4, 11), source: 'reference' },
  { sha256: 'hist-b', embedding: machineB, source: 'history', takenAt: '2025-01-01T00:00:00Z' },
];
const registered = { type: 'excavator', brand: 'Kobelco', model: 'SK140' };

test('cosine similarity and best match', () => {
  assert.is(cosineSimilarity([1, 0], [1, 0]), 1);
  assert.is(cosineSimilarity([1, 0], [0, 1]), 0);
  assert.is(cosineSimilarity([1, 2], [-1, -2]), -1);
  assert.is(cosineSimilarity([0, 0], [1, 1]), 0);
  assert.throws(() => cosineSimilarity([1, 2, 3], [1, 2]), (e: unknown) => e instanceof ComparisonError && e.code === 'EMBEDDING_LENGTH_MISMATCH');
  assert.throws(() => cosineSimilarity([1, Number.NaN], [1, 2]), (e: unknown) => e instanceof ComparisonError && e.code === 'INVALID_EMBEDDING' && e.message.includes('index 1'));
  // The check runs once per pair on the sums: a bad value on either side, at any place, is still caught and located.
  assert.throws(() => cosineSimilarity([1, 2, 3], [1, 2, Number.POSITIVE_INFINITY]), (e: unknown) => e instanceof ComparisonError && e.message.includes('index 2'));
  assert.throws(() => cosineSimilarity([0, 0], [Number.NEGATIVE_INFINITY, 0]), (e: unknown) => e instanceof ComparisonError && e.message.includes('index 0'));
  assert.throws(() => cosineSimilarity([1e200, 1], [1, 1]), (e: unknown) => e instanceof ComparisonError && e.code === 'INVALID_EMBEDDING' && /too large/.test(e.message));
  assert.throws(() => cosineSimilarity([], []), (e: unknown) => e instanceof ComparisonError && e.code === 'INVALID_EMBEDDING');
  assert.throws(() => bestMatch([1, 2], [{ sha256: 'bad', embedding: [1, Number.NaN], source: 'history' }]), (e: unknown) => e instanceof ComparisonError && e.code === 'INVALID_EMBEDDING');
  // Scoring many candidates against one vector gives what each pair gives on its own.
  const many = Array.from({ length: 20 }, (_, i): Candidate => ({ sha256: `c${i}`, embedding: near(machineA, 0.05 * i, 40 + i), source: 'history' }));
  const best = bestMatch(machineA, many);
  const byPair = Math.max(...many.map((c) => cosineSimilarity(machineA, c.embedding)));
  assert.is(best?.similarity, byPair);
  const m = bestMatch(near(machineA, 0.2, 99), refs);
  assert.is(m?.sha256, 'ref-a1');
  assert.is(bestMatch(machineB, refs, { source: 'history' })?.similarity, 1);
  assert.is(bestMatch(machineA, []), null);
});

test('nothing registered, no candidates → unknown', () => {
  const r = compare({ recognized: { machineType: 'excavator', confidence: 0.9 }, candidates: [], knownHashes: [] });
  assert.is(r.verdict, 'unknown');
  assert.is(r.typeCheck.registeredType, null);
  assert.is(r.bestMatch, null);
  assert.is(r.scores.bestSimilarity, null);
  assert.equal(r.thresholds, { ...DEFAULT_COMPARISON_THRESHOLDS });
});

test('only photos another model embedded: the reasons say so, not "no reference photos"', () => {
  const r = compare({ recognized: { machineType: 'excavator', confidence: 0.4, embedding: machineA }, candidates: [], knownHashes: [], incomparable: { references: 2, history: 1, dim: 256 } });
  assert.is(r.verdict, 'unknown');
  assert.ok(r.reasons.includes('no reference or earlier photos made by this model to compare with'), JSON.stringify(r.reasons));
  assert.ok(r.reasons.some((x) => x.startsWith('2 reference photos were embedded by another model (not 256 numbers)')));
  assert.ok(r.reasons.includes('1 earlier photo of this machine, embedded by another model, left out'));
  assert.not.ok(r.reasons.includes('no reference or earlier photos to compare with'));
});

test('confidently different type → mismatch, even with similar embedding', () => {
  const r = compare({ recognized: { machineType: 'wheel_loader', confidence: 0.8, embedding: near(machineA, 0.2, 5) }, registered, candidates: refs, knownHashes: [] });
  assert.is(r.verdict, 'mismatch');
  assert.is(r.typeCheck.match, false);
  assert.ok(r.reasons.some((x) => x.includes('differs')));
});

test('low-confidence different type does not decide; similar to reference → match', () => {
  const r = compare({ recognized: { machineType: 'wheel_loader', confidence: 0.4, embedding: near(machineA, 0.2, 6) }, registered, candidates: refs, knownHashes: [] });
  assert.is(r.typeCheck.match, null);
  assert.is(r.verdict, 'match');
  assert.is(r.bestMatch?.source, 'reference');
  assert.ok((r.scores.bestSimilarity ?? 0) >= DEFAULT_COMPARISON_THRESHOLDS.similarityMatch);
});

test('unlike every reference and type not confirmed → mismatch; same type → match', () => {
  const other = vec(77);
  const r = compare({ recognized: { machineType: 'unknown', confidence: 0.1, embedding: other }, registered, candidates: refs, knownHashes: [] });
  assert.is(r.verdict, 'mismatch');
  // A true statement about an unknown type: no confidence compared with the threshold.
  assert.ok(r.reasons.includes('type undetermined: the machine type on the photo was not recognised'), r.reasons.join('; '));
  const low = compare({ recognized: { machineType: 'excavator', confidence: 0.3, embedding: other }, registered, candidates: refs, knownHashes: [] });
  assert.ok(low.reasons.includes('type undetermined: recognised excavator with confidence 0.30, below 0.6'), low.reasons.join('; '));
  const r2 = compare({ recognized: { machineType: 'Excavator', confidence: 0.9, embedding: other }, registered, candidates: refs, knownHashes: [] });
  assert.is(r2.verdict, 'match');
  assert.is(r2.typeCheck.match, true);
});

test('an earlier photo alone does not make a match of one where recognition saw no machine; a reference does', () => {
  const history = [{ sha256: 'hist-b', embedding: machineB, source: 'history' as const, takenAt: '2025-01-01T00:00:00Z' }];
  const dark = compare({ recognized: { machineType: 'unknown', confidence: 1, embedding: near(machineB, 0.05, 3), noMachine: true }, registered, candidates: history, knownHashes: [] });
  assert.is(dark.verdict, 'unknown', dark.reasons.join('; '));
  assert.ok(dark.reasons.some((r) => /but recognition saw no machine in this photo/.test(r)), dark.reasons.join('; '));
  const unsure = compare({ recognized: { machineType: 'unknown', confidence: 0.3, embedding: near(machineB, 0.05, 3) }, registered, candidates: history, knownHashes: [] });
  assert.is(unsure.verdict, 'match', 'a type recognition was unsure of: a very similar earlier photo still decides');
  const byRef = compare({ recognized: { machineType: 'unknown', confidence: 1, embedding: near(machineA, 0.2, 6), noMachine: true }, registered, candidates: refs, knownHashes: [] });
  assert.is(byRef.verdict, 'match', 'a reference photo still decides');
});

test('near-duplicate detection by pHash, own sha256 excluded', () => {
  const r = compare({
    recognized: { machineType: 'excavator', confidence: 0.9 }, registered, candidates: [],
    phash: 'f0f0f0f0f0f0f0f0', sha256: 'self',
    knownHashes: [{ sha256: 'self', phash: 'f0f0f0f0f0f0f0f0' }, { sha256: 'old', phash: 'f0f0f0f0f0f0f0ff' }, { sha256: 'far', phash: '0f0f0f0f0f0f0f0f' }],
  });
  assert.equal(r.nearDuplicate, { duplicate: true, sha256: 'old', hammingDistance: 4 });
  assert.is(r.verdict, 'match');
  const r2 = compare({ recognized: { machineType: 'excavator', confidence: 0.9 }, candidates: [], phash: 'f0f0f0f0f0f0f0f0', knownHashes: [{ sha256: 'far', phash: '0f0f0f0f0f0f0f0f' }] });
  assert.is(r2.nearDuplicate.duplicate, false);
  assert.is(r2.nearDuplicate.hammingDistance, 64);
});

test('embedding length mismatch surfaces as typed error', () => {
  assert.throws(
    () => compare({ recognized: { machineType: 'excavator', confidence: 0.9, embedding: [1, 2, 3] }, registered, candidates: refs, knownHashes: [] }),
    (e: unknown) => e instanceof ComparisonError && e.code === 'EMBEDDING_LENGTH_MISMATCH' && /re-embed/.test(e.message),
  );
});

test('calibrateSimilarity separates same/different pairs', () => {
  const pairs = [
    ...[0, 1, 2, 3, 4].map((i) => ({ a: near(machineA, 0.3, 100 + i), b: near(machineA, 0.3, 200 + i), sameMachine: true })),
    ...[0, 1, 2, 3, 4].map((i) => ({ a: near(machineA, 0.3, 300 + i), b: vec(400 + i), sameMachine: false })),
  ];
  const c = calibrateSimilarity(pairs);
  assert.ok(c.same.min > c.different.max);
  assert.ok(c.similarityMatch >= c.different.max && c.similarityMismatch <= c.similarityMatch);
});

test.run();
