import { comparisonResult, serveStep, StepError, type BusClient, type ComparisonResult } from '@tu/shared';
import { readEmbeddingForStep } from '../../blobs/derived.js';
import type { BlobStore } from '../../blobs/store.js';
import type { PhotoHistory } from '../../device/history.js';
import type { ReferencePhoto } from '../../device/schemas.js';
import { NO_MACHINE_REASON } from '../vision/head.js';
import { ComparisonError } from './errors.js';
import { phash } from './phash.js';
import type { Candidate } from './similarity.js';
import { compare, type ComparisonThresholds } from './verdict.js';

export interface ComparisonServiceDeps {
  bus: BusClient;
  blobs: BlobStore;
  history: PhotoHistory;
  /** Reference photos of the registered machine (device state). */
  references: () => Promise<readonly ReferencePhoto[]> | readonly ReferencePhoto[];
  thresholds?: Partial<ComparisonThresholds>;
}

/** History key: the upload's machineId, else the registered machine, else the gateway's own. */
export const historyKey = (machineId: string | undefined, registeredId: string | undefined): string => machineId ?? registeredId ?? 'gateway';

/**
 * comparison-service: registered type, reference photos and earlier photos of the machine
 * (cosine similarity of embeddings), near-duplicates (pHash; the very same file counts as
 * a duplicate at distance 0 when an earlier analysis had it). Records the photo in the
 * history after comparing; retried/duplicate commands do not duplicate it.
 */
export async function startComparisonService(deps: ComparisonServiceDeps): Promise<{ stop(): Promise<void> }> {
  const unsubscribe = await serveStep(deps.bus, 'comparison', async (cmd): Promise<ComparisonResult> => {
    const { data } = cmd;
    const rec = data.previous.recognition;
    if (!rec) throw new StepError('STEP_FAILED', 'comparison needs the recognition result (embedding); run recognition first', false);
    const sha = data.image.sha256;
    // The result carries a reference; the vector is in the blob store (EMBEDDING_MISSING when it is gone).
    const embedding = await readEmbeddingForStep(deps.blobs, rec.embedding);
    const key = historyKey(data.machineId, data.registered?.id);
    const forRegistered = !data.machineId || data.machineId === data.registered?.id;
    const refs = forRegistered ? await deps.references() : [];
    const earlier = deps.history.recent(key).filter((h) => h.analysisId !== data.analysisId);
    let hash: string | undefined;
    try {
      hash = await phash(deps.blobs.pathOf(sha));
    } catch {
      hash = undefined; // undecodable: no near-duplicate check (recognition already decoded it, so rare)
    }
    // Embeddings another model made (after a model update) cannot be compared with this one's: left
    // out, and counted so that the result says so rather than "no reference photos".
    const comparable = (v: ArrayLike<number>) => v.length === embedding.length;
    const candidates: Candidate[] = [
      ...refs.filter((r) => comparable(r.embedding)).map((r) => ({ sha256: r.sha256, embedding: r.embedding, source: 'reference' as const, takenAt: r.addedAt })),
      ...earlier.filter((h) => comparable(h.embedding)).map((h) => ({ sha256: h.sha256, embedding: h.embedding, source: 'history' as const, takenAt: h.takenAt })),
    ];
    const incomparable = { references: refs.filter((r) => !comparable(r.embedding)).length, history: earlier.filter((h) => !comparable(h.embedding)).length, dim: embedding.length };
    const knownHashes = [...refs, ...earlier].flatMap((r) => (r.phash ? [{ sha256: r.sha256, phash: r.phash }] : []));
    let result;
    try {
      result = compare({
        recognized: { machineType: rec.machineType, confidence: rec.confidence, embedding, noMachine: rec.machineType === 'unknown' && (rec.unknownReason?.startsWith(NO_MACHINE_REASON) ?? false) },
        ...(data.registered ? { registered: data.registered } : {}),
        candidates,
        ...(hash ? { phash: hash } : {}),
        sha256: sha,
        knownHashes,
        ...(incomparable.references + incomparable.history > 0 ? { incomparable } : {}),
        ...(deps.thresholds ? { thresholds: deps.thresholds } : {}),
      });
    } catch (err) {
      if (err instanceof ComparisonError) throw new StepError(err.code, err.message, false);
      throw err;
    }
    const same = earlier.find((h) => h.sha256 === sha) ?? refs.find((r) => r.sha256 === sha);
    if (same) {
      result.nearDuplicate = { duplicate: true, sha256: sha, hammingDistance: 0 };
      result.reasons = [...result.reasons, `the same photo (sha256 ${sha.slice(0, 12)}…) was analysed before`].slice(0, 20);
    }
    deps.history.record({ sha256: sha, ...(hash ? { phash: hash } : {}), embedding, machineId: key, takenAt: new Date().toISOString(), analysisId: data.analysisId });
    return comparisonResult.parse(result);
  });
  await deps.bus.markReady();
  return { stop: unsubscribe };
}
