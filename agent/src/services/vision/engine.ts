/**
 * In-thread vision engine: backbone (ONNX Runtime or TF.js, by the model manifest) +
 * preprocessing + optional head. The recognizer runs this inside a worker thread;
 * scripts (training, eval) use it directly. Inference is CPU work, so do not use the
 * engine on a server's main thread — use createRecognizer().
 */
import type { BackendName } from './backend.js';
import { loadBackbone, topKImagenet, type Backbone } from './backbone.js';
import { predictHead, UNKNOWN } from './head.js';
import { assertHeadFitsBackbone, loadHead, type HeadFile } from './head-format.js';
import { HeadError, WorkerError } from './errors.js';
import { buildImagenetMachineMap } from './imagenet-map.js';
import { DEFAULT_MAX_PIXELS, flipHorizontal, preprocessImage, type FitMode, type ImageInput } from './preprocess.js';
import type { RecognitionResult, RecognizerInfo } from './types.js';
import { l2Normalize } from './vector.js';

/** Defaults chosen by agent/scripts/eval.ts measurements (see README.md). */
export const DEFAULT_FIT: FitMode = 'cover';
export const DEFAULT_TTA = false;

export interface EngineOptions {
  modelDir: string;
  headPath?: string | undefined;
  head?: HeadFile | undefined;
  backend?: BackendName | undefined;
  maxPixels?: number | undefined;
  /** Alternative folder of repo model manifests (tests). */
  repoManifestDir?: string | undefined;
  /** Ignored when a head is loaded: the head's own preprocessing is used. */
  fit?: FitMode | undefined;
  tta?: boolean | undefined;
}

export interface EmbeddingResult {
  embedding: Float32Array;
  probs: Float32Array;
  image: { width: number; height: number };
  decodeMs: number;
  inferenceMs: number;
}

export interface VisionEngine {
  info(): RecognizerInfo;
  embed(input: ImageInput): Promise<EmbeddingResult>;
  recognize(input: ImageInput): Promise<RecognitionResult>;
  /**
   * The head as loaded: every refit starts from it (refit.ts), never from an earlier refit.
   * Without a head there is nothing to refit (HEAD_INVALID).
   */
  refitBase(): HeadFile;
  /** Puts a refitted head (refit.ts refitHead) in use for the photos that follow, replacing any earlier refit. */
  useHead(next: HeadFile): void;
  /** Engine memory (tfjs tensors, wasm heap; empty for ONNX Runtime). */
  memory(): Record<string, number | null>;
  dispose(): void;
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function average(outs: { probs: Float32Array; embedding: Float32Array }[]): { probs: Float32Array; embedding: Float32Array } | undefined {
  const [a, b] = outs;
  if (!a || !b) return a;
  return { probs: a.probs.map((v, i) => (v + (b.probs[i] ?? 0)) / 2), embedding: a.embedding.map((v, i) => (v + (b.embedding[i] ?? 0)) / 2) };
}

function round(x: number, d = 4): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

export async function createVisionEngine(opts: EngineOptions): Promise<VisionEngine> {
  const t0 = performance.now();
  const backbone: Backbone = await loadBackbone(opts.modelDir, { tfjsBackend: opts.backend, repoManifestDir: opts.repoManifestDir });
  let head: HeadFile | null;
  try {
    head = opts.head ?? (opts.headPath ? await loadHead(opts.headPath) : null);
    if (head) assertHeadFitsBackbone(head, backbone.info, opts.modelDir);
    // The head as loaded: every refit starts again from it.
  } catch (err) {
    backbone.dispose();
    throw err;
  }
  const loadedHead = head;
  const fit = head?.preprocessing.fit ?? opts.fit ?? DEFAULT_FIT;
  const tta = head?.preprocessing.tta ?? opts.tta ?? DEFAULT_TTA;
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const machineMap = buildImagenetMachineMap(backbone.info.labels);
  const spec = backbone.info.input;
  let disposed = false;

  const info: RecognizerInfo = {
    model: {
      id: backbone.info.id,
      version: backbone.info.version,
      backend: backbone.info.runtime,
      head: head ? { id: head.id, labels: [...head.labels], trainedAt: head.trainedAt } : null,
      kind: backbone.info.engine,
      embeddingDim: backbone.info.embeddingDim,
      source: backbone.info.source,
    },
    preprocessing: { fit, tta, maxPixels },
    backendSkipped: backbone.info.runtimeSkipped,
    loadMs: performance.now() - t0,
    thread: 'inline',
  };

  async function embed(input: ImageInput): Promise<EmbeddingResult> {
    if (disposed) throw new WorkerError('RECOGNIZER_DISPOSED', 'vision engine was disposed; create a new one');
    const img = await preprocessImage(input, { fit, maxPixels, input: spec });
    const ti = performance.now();
    // Flip-TTA: the mirrored image in the same batch, outputs averaged.
    const batch = tta ? concat(img.data, flipHorizontal(img.data, spec.size, spec.layout)) : img.data;
    const outs = await backbone.infer(batch, tta ? 2 : 1);
    const out = tta ? average(outs) : outs[0];
    if (!out) throw new HeadError('HEAD_INVALID', 'backbone returned no output');
    return {
      embedding: l2Normalize(out.embedding),
      probs: out.probs,
      image: { width: img.width, height: img.height },
      decodeMs: img.decodeMs,
      inferenceMs: performance.now() - ti,
    };
  }

  async function recognize(input: ImageInput): Promise<RecognitionResult> {
    const e = await embed(input);
    const th = performance.now();
    const imagenetTopK = topKImagenet(e.probs, backbone.info.labels, 5).map((p) => ({ ...p, score: round(p.score) }));
    let decision: Pick<RecognitionResult, 'machineType' | 'confidence' | 'unknownReason' | 'topK'>;
    if (head) {
      const p = predictHead(head, e.embedding);
      decision = {
        machineType: p.machineType,
        confidence: round(p.confidence),
        ...(p.unknownReason ? { unknownReason: p.unknownReason } : {}),
        topK: p.topK.map((t) => ({ label: t.label, score: round(t.score) })),
      };
    } else {
      const top = imagenetTopK[0];
      const mapped = top ? machineMap.get(top.index) : undefined;
      decision =
        top && mapped
          ? { machineType: mapped, confidence: top.score, topK: [] }
          : {
              machineType: UNKNOWN,
              confidence: 0,
              unknownReason: `no head trained (ImageNet top-1 '${top?.label ?? '?'}' is not a machine class ImageNet knows: forklift, crane, tractor)`,
              topK: [],
            };
    }
    const headMs = performance.now() - th;
    return {
      ...decision,
      imagenetTopK,
      embedding: Array.from(e.embedding, (v) => round(v, 6)),
      model: { id: info.model.id, version: info.model.version, backend: info.model.backend, head: info.model.head },
      timings: { decodeMs: round(e.decodeMs, 2), inferenceMs: round(e.inferenceMs, 2), headMs: round(headMs, 3) },
      image: e.image,
    };
  }

  function refitBase(): HeadFile {
    if (!loadedHead) throw new HeadError('HEAD_INVALID', 'no machine-type head is loaded, so there is nothing to refit; install or train one (npm run build:head)');
    return loadedHead;
  }

  function useHead(next: HeadFile): void {
    head = next;
    info.model.head = { id: next.id, labels: [...next.labels], trainedAt: next.trainedAt };
  }

  return {
    info: () => info,
    embed,
    recognize,
    refitBase,
    useHead,
    memory: () => backbone.memory(),
    dispose: () => {
      if (!disposed) backbone.dispose();
      disposed = true;
    },
  };
}
