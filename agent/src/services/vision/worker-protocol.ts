/** Messages between the recognizer (main thread) and its worker. */
import type { BackendName } from './backend.js';
import type { SerializedVisionError } from './errors.js';
import type { FitMode } from './preprocess.js';
import type { RefitSummary } from './refit.js';
import type { RecognitionResult, RecognizerInfo } from './types.js';

export interface WorkerInit {
  modelDir: string;
  headPath?: string | undefined;
  backend?: BackendName | undefined;
  maxPixels?: number | undefined;
  fit?: FitMode | undefined;
  tta?: boolean | undefined;
}

export type ToWorker =
  | { type: 'recognize'; id: number; path?: string; bytes?: Uint8Array }
  | { type: 'stats'; id: number }
  | { type: 'teach'; id: number; examples: { label: string; embedding: Float32Array }[] }
  | { type: 'close' };

/** Memory of the worker thread: its V8 heap, tfjs tensors and the wasm heap (null with ONNX Runtime). */
export interface WorkerStats {
  heapUsedMB: number;
  heapTotalMB: number;
  externalMB: number;
  arrayBuffersMB: number;
  numTensors: number | null;
  tensorMB: number | null;
  /** Size of the wasm backend's linear memory (grows, never shrinks); null on other backends / ONNX Runtime. */
  wasmHeapMB: number | null;
}

export type FromWorker =
  | { type: 'ready'; info: RecognizerInfo }
  | { type: 'init-error'; error: SerializedVisionError }
  | { type: 'result'; id: number; result: RecognitionResult }
  | { type: 'error'; id: number; error: SerializedVisionError }
  | { type: 'stats'; id: number; stats: WorkerStats }
  | { type: 'taught'; id: number; summary: RefitSummary; info: RecognizerInfo };
