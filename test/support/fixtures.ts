import { createHash, randomBytes } from 'node:crypto';
import { pack, type ComparisonResult, type ImageRef, type InputOf, type MetadataResult, type NameplateResult, type RecognitionResult } from '@tu/shared';

export const newAnalysisId = (): string => randomBytes(9).toString('base64url');

export function imageRef(seed = randomBytes(8).toString('hex')): ImageRef {
  return { sha256: createHash('sha256').update(seed).digest('hex'), contentType: 'image/jpeg', bytes: 123_456, width: 1024, height: 768 };
}

export function uploaded(gatewayId: string, analysisId = newAnalysisId()): InputOf<'tu.image.uploaded'> {
  return { analysisId, gatewayId, image: imageRef(analysisId), uploadedAt: new Date().toISOString(), via: 'api' };
}

// Results of plausible shape for handlers that answer at once (orchestrator tests and
// benchmarks); the real services produce these from photos.
/** The fixture results' embedding (float32 values, so a packed copy round-trips exactly). */
export const recognitionVector = (): number[] => Array.from({ length: 256 }, (_, i) => Math.fround(Math.sin(i) / 8));
export const labelVector = (): number[] => Array.from({ length: 256 }, (_, i) => Math.fround(Math.cos(i) / 8));

export const recognitionResult = (): RecognitionResult => ({
  machineType: 'excavator',
  confidence: 0.91,
  topK: [
    { label: 'excavator', score: 0.91 },
    { label: 'backhoe_loader', score: 0.05 },
  ],
  imagenetTopK: [{ label: 'crane', index: 517, score: 0.4 }],
  // Packed (float32) on the bus: these fake results have no file in any blob store to reference.
  embedding: pack(recognitionVector()),
  model: { id: 'mobilenet_v1_025_224', version: '1', backend: 'wasm', head: null },
  timings: { decodeMs: 20, inferenceMs: 6, headMs: 0.1 },
  image: { width: 1024, height: 768 },
});

export const comparisonResult = (): ComparisonResult => ({
  verdict: 'unknown',
  reasons: ['no machine registered'],
  typeCheck: { registeredType: null, recognizedType: 'excavator', match: null },
  bestMatch: null,
  nearDuplicate: { duplicate: false },
  scores: { typeConfidence: 0.91, bestSimilarity: null },
  thresholds: { similarityMatch: 0.8, similarityMismatch: 0.5, duplicateHamming: 6, minTypeConfidence: 0.6 },
});

export const metadataResult = (): MetadataResult => ({
  exif: {},
  quality: { width: 1024, height: 768, megapixels: 0.79, sharpness: 120, brightness: 0.5, contrast: 0.2 },
  warnings: [],
  category: 'overview',
  record: { type: 'excavator', photoQuality: 'good', photoCategory: 'overview' },
});

export const nameplateResult = (): NameplateResult => ({
  text: 'LIEBHERR\nTYPE R 920\nSERIAL 1234-5678\nYEAR 2019',
  fields: { brand: 'Liebherr', model: 'R 920', serialNumber: '1234-5678', year: 2019 },
  confidence: 0.8,
});

/** A technician's label as the agent publishes it (recognition.labelled). */
export function labelled(over: Partial<InputOf<'recognition.labelled'>> = {}): InputOf<'recognition.labelled'> {
  const analysisId = over.analysisId ?? newAnalysisId();
  return {
    correctionId: randomBytes(12).toString('base64url'),
    analysisId,
    sha256: imageRef(analysisId).sha256,
    embedding: pack(labelVector()),
    label: 'excavator',
    previousLabel: 'excavator',
    kind: 'confirmation',
    by: 'Anna (tech 17)',
    at: new Date().toISOString(),
    model: { id: 'mobilenet_v1_025_224', version: '1', headId: null },
    ...over,
  };
}
