/** Public result types of the vision library (the service's zod schema mirrors RecognitionResult). */
import type { RuntimeName } from './backbone.js';
import type { ModelEngineKind } from './manifest.js';

export interface RecognitionResult {
  /** A head label, or 'unknown'. */
  machineType: string;
  /** 0..1: probability of machineType; for 'unknown' the probability that no known type applies. */
  confidence: number;
  unknownReason?: string;
  /** Head labels, top 3 (empty without a head). */
  topK: { label: string; score: number }[];
  /** Top 5 ImageNet classes; index is in the backbone's labels.json order. */
  imagenetTopK: { label: string; index: number; score: number }[];
  /** L2-normalised backbone embedding. */
  embedding: number[];
  model: {
    id: string;
    version: string;
    /** tfjs backend, or 'onnxruntime'. */
    backend: RuntimeName;
    head: { id: string; labels: string[]; trainedAt: string } | null;
  };
  timings: { decodeMs: number; inferenceMs: number; headMs: number };
  image: { width: number; height: number };
}

export interface RecognizerInfo {
  model: RecognitionResult['model'] & { kind: ModelEngineKind; embeddingDim: number; source: string | null };
  preprocessing: { fit: 'cover' | 'fill' | 'contain'; tta: boolean; maxPixels: number };
  backendSkipped: { backend: RuntimeName; reason: string }[];
  loadMs: number;
  /** Where inference runs: 'worker' (recognizer) or 'inline' (engine used directly). */
  thread: 'worker' | 'inline';
}
