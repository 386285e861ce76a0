/**
 * compare(): verdict match / mismatch / unknown with reasons and scores.
 *
 * Rules, in order (every rule that applies adds a reason):
 *  1. Near-duplicate: the photo's pHash is within `duplicateHamming` of a known hash
 *     (other sha256) → reported in `nearDuplicate`; it never decides the verdict alone.
 *  2. Type check (only when a registered type exists): recognised type with
 *     confidence >= minTypeConfidence and != registered type → MISMATCH.
 *     Same type → consistent. Low confidence or 'unknown' → undetermined (null).
 *  3. Embedding similarity to candidates (best of references, else history):
 *     >= similarityMatch and type not contradicted → MATCH;
 *     < similarityMismatch against *reference* photos and type not confirmed → MISMATCH.
 *  4. Type confirmed (match = true) without similarity evidence → MATCH.
 *  5. Otherwise UNKNOWN (incl. no registered machine and no candidates).
 * Similarity thresholds are calibrated on the test photos with the default backbone's
 * embedding, MobileNet V2 (scripts/calibrate-similarity.ts, README.md): match 0.73 = ~1% of
 * different-machine pairs; mismatch 0.60 = ~0.06 below the lowest same-machine pair (0.656).
 * Another backbone gives another scale (MobileNet v1 0.25: 0.85 / 0.72): re-run the script
 * and set comparison.thresholds.
 */
import { COMPARISON_DEFAULTS } from '@tu/firmware-config';
import { hammingDistance, isHash } from './phash.js';
import { bestMatch, type BestMatch, type Candidate, type Embedding } from './similarity.js';

export interface ComparisonThresholds {
  similarityMatch: number;
  similarityMismatch: number;
  duplicateHamming: number;
  minTypeConfidence: number;
}

/** Kept with the config, which refuses a similarityMismatch above the similarityMatch (firmware-config/src/thresholds.ts). */
export const DEFAULT_COMPARISON_THRESHOLDS: Readonly<ComparisonThresholds> = COMPARISON_DEFAULTS;

export interface RegisteredProfile {
  type?: string;
  brand?: string;
  model?: string;
  serialNumber?: string;
  name?: string;
}

export interface CompareInput {
  /**
   * `noMachine`: recognition found the photo closest to the photos without a machine (the head's
   * negative class; vision/head.ts NO_MACHINE_REASON), not merely unsure of the type.
   */
  recognized: { machineType: string; confidence: number; embedding?: Embedding; noMachine?: boolean };
  registered?: RegisteredProfile;
  candidates: readonly Candidate[];
  /** pHash of this photo (16 hex) — absent if hashing failed. */
  phash?: string;
  /** sha256 of this photo: excluded from duplicates and candidates. */
  sha256?: string;
  knownHashes: readonly { sha256: string; phash: string }[];
  thresholds?: Partial<ComparisonThresholds>;
  /**
   * Reference and earlier photos whose embeddings another model made (another length): left out
   * of `candidates`, since no similarity between them means anything, and said in the reasons
   * (the references must be registered again after a model change).
   */
  incomparable?: { references: number; history: number; dim: number };
}

export type Verdict = 'match' | 'mismatch' | 'unknown';

export interface ComparisonResult {
  verdict: Verdict;
  reasons: string[];
  typeCheck: { registeredType: string | null; recognizedType: string; match: boolean | null };
  bestMatch: { sha256: string; similarity: number; source: 'reference' | 'history' } | null;
  nearDuplicate: { duplicate: boolean; sha256?: string; hammingDistance?: number };
  scores: { typeConfidence: number; bestSimilarity: number | null };
  thresholds: ComparisonThresholds;
}

const norm = (s: string): string => s.trim().toLowerCase().replace(/[\s-]+/g, '_');

/**
 * A similarity that decided nothing, with its scale and the thresholds it fell between (a bare
 * "0.458" told a technician nothing); only reference photos can show another machine.
 */
function inconclusive(match: BestMatch, t: ComparisonThresholds): string {
  const bounds = match.source === 'reference' ? `between ${t.similarityMismatch} (another machine) and ${t.similarityMatch} (the same machine)` : `below ${t.similarityMatch} (the same machine)`;
  return `closest ${match.source === 'reference' ? 'reference' : 'earlier'} photo ${match.sha256} is ${match.similarity.toFixed(3)} similar (1 = the same view), ${bounds}: inconclusive`;
}

export function compare(input: CompareInput): ComparisonResult {
  const t: ComparisonThresholds = { ...DEFAULT_COMPARISON_THRESHOLDS, ...input.thresholds };
  const reasons: string[] = [];
  const { recognized } = input;
  const confidence = Number.isFinite(recognized.confidence) ? recognized.confidence : 0;

  // 1. near-duplicate
  let nearDuplicate: ComparisonResult['nearDuplicate'] = { duplicate: false };
  if (input.phash && isHash(input.phash)) {
    let best: { sha256: string; d: number } | null = null;
    for (const k of input.knownHashes) {
      if (k.sha256 === input.sha256 || !isHash(k.phash)) continue;
      const d = hammingDistance(input.phash, k.phash);
      if (!best || d < best.d) best = { sha256: k.sha256, d };
    }
    if (best && best.d <= t.duplicateHamming) {
      nearDuplicate = { duplicate: true, sha256: best.sha256, hammingDistance: best.d };
      reasons.push(`near-duplicate of ${best.sha256} (Hamming ${best.d} <= ${t.duplicateHamming})`);
    } else if (best) {
      nearDuplicate = { duplicate: false, sha256: best.sha256, hammingDistance: best.d };
    }
  }

  // 2. type check
  const registeredType = input.registered?.type ? norm(input.registered.type) : null;
  const recognizedType = norm(recognized.machineType || 'unknown');
  let typeMatch: boolean | null = null;
  if (registeredType) {
    if (recognizedType === 'unknown') {
      // No confidence here: an 'unknown' carries none worth comparing with the threshold.
      reasons.push('type undetermined: the machine type on the photo was not recognised');
    } else if (confidence < t.minTypeConfidence) {
      reasons.push(`type undetermined: recognised ${recognizedType} with confidence ${confidence.toFixed(2)}, below ${t.minTypeConfidence}`);
    } else if (recognizedType === registeredType) {
      typeMatch = true;
      reasons.push(`recognised type ${recognizedType} matches registered type`);
    } else {
      typeMatch = false;
      reasons.push(`recognised type ${recognizedType} (confidence ${confidence.toFixed(2)}) differs from registered ${registeredType}`);
    }
  } else {
    reasons.push('no registered machine type');
  }

  // 3. similarity
  let match: BestMatch | null = null;
  if (recognized.embedding && recognized.embedding.length > 0 && input.candidates.length > 0) {
    const ex = input.sha256 ? { excludeSha256: input.sha256 } : {};
    match = bestMatch(recognized.embedding, input.candidates, { source: 'reference', ...ex }) ??
      bestMatch(recognized.embedding, input.candidates, { source: 'history', ...ex });
  } else if (input.candidates.length === 0) {
    reasons.push(input.incomparable && input.incomparable.references + input.incomparable.history > 0 ? 'no reference or earlier photos made by this model to compare with' : 'no reference or earlier photos to compare with');
  } else {
    reasons.push('no embedding in recognition result');
  }

  let verdict: Verdict = 'unknown';
  if (typeMatch === false) {
    verdict = 'mismatch';
  } else if (match && match.similarity >= t.similarityMatch && match.source === 'history' && recognized.noMachine) {
    // An earlier photo alone does not vouch for one in which recognition saw no machine: two
    // black pocket shots are alike, and neither shows the machine. Reference photos still do.
    reasons.push(`closest earlier photo ${match.sha256} is ${match.similarity.toFixed(3)} similar, but recognition saw no machine in this photo: only a reference photo could vouch for it`);
  } else if (match && match.similarity >= t.similarityMatch) {
    verdict = 'match';
    reasons.push(`similar to ${match.source} photo ${match.sha256} (${match.similarity.toFixed(3)} >= ${t.similarityMatch})`);
  } else if (match && match.source === 'reference' && match.similarity < t.similarityMismatch && typeMatch !== true) {
    verdict = 'mismatch';
    reasons.push(`unlike every reference photo (best ${match.similarity.toFixed(3)} < ${t.similarityMismatch})`);
  } else if (typeMatch === true) {
    verdict = 'match';
    if (match) reasons.push(`${inconclusive(match, t)}; the type decides`);
  } else if (match) {
    reasons.push(inconclusive(match, t));
  }
  const stale = input.incomparable;
  if (stale && stale.references > 0) {
    reasons.push(`${stale.references} reference photo${stale.references === 1 ? ' was' : 's were'} embedded by another model (not ${stale.dim} numbers) and cannot be compared: register them again`);
  }
  if (stale && stale.history > 0) reasons.push(`${stale.history} earlier photo${stale.history === 1 ? '' : 's'} of this machine, embedded by another model, left out`);
  // Only this same photo was known (uploaded again): said, since no other reason covers it.
  if (!match && recognized.embedding && recognized.embedding.length > 0 && input.candidates.length > 0) reasons.push('no other photo to compare with (the known ones are this same photo)');

  return {
    verdict,
    reasons,
    typeCheck: { registeredType, recognizedType, match: typeMatch },
    bestMatch: match ? { sha256: match.sha256, similarity: Number(match.similarity.toFixed(4)), source: match.source } : null,
    nearDuplicate,
    scores: { typeConfidence: confidence, bestSimilarity: match ? Number(match.similarity.toFixed(4)) : null },
    thresholds: t,
  };
}
