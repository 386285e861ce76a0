/**
 * Engine-independent backbone: one forward pass gives ImageNet class probabilities
 * and an embedding. The engine (ONNX Runtime or TF.js) is chosen by the model
 * manifest's `engine` field; each engine module is imported only when a model of
 * its kind is loaded, so an ONNX-only agent never loads tfjs or its wasm heap.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelLoadError } from './errors.js';
import { inputSpec, modelVersion, readManifestLabels, resolveManifest, type InputSpec, type ModelEngineKind, type ModelManifest, type InferredManifest } from './manifest.js';

/** What runs the model: a tfjs backend, or ONNX Runtime's CPU provider. */
export type RuntimeName = 'tensorflow' | 'wasm' | 'cpu' | 'onnxruntime';

export interface BackboneInfo {
  id: string;
  /** `sha256-<12 hex>` of the weights (manifest sha256); heads are bound to it. */
  version: string;
  engine: ModelEngineKind;
  runtime: RuntimeName;
  /** Runtimes tried and skipped, with the reason (tfjs backend fallback). */
  runtimeSkipped: { backend: RuntimeName; reason: string }[];
  input: InputSpec;
  embeddingDim: number;
  /** ImageNet class names in `probs` order (background removed). */
  labels: readonly string[];
  /** First line of the notice file, if any. */
  source: string | null;
  licence: string;
  /** Where the manifest came from (file path or 'inferred from model.json'). */
  manifestOrigin: string;
  loadMs: number;
}

export interface BackboneOutput {
  /** Softmax probabilities over `labels`. */
  probs: Float32Array;
  /** Raw (un-normalised) embedding. */
  embedding: Float32Array;
}

export interface Backbone {
  info: BackboneInfo;
  /** `data` = n images already in the model's layout and normalisation (preprocess.ts). */
  infer(data: Float32Array, n: number): Promise<BackboneOutput[]>;
  /** Engine memory for diagnostics (tfjs tensors / wasm heap); empty for ONNX Runtime. */
  memory(): Record<string, number | null>;
  dispose(): void;
}

export interface LoadBackboneOptions {
  /** Force a tfjs backend (TF.js models only). */
  tfjsBackend?: 'tensorflow' | 'wasm' | 'cpu' | undefined;
  /** Alternative folder of repo manifests (tests). */
  repoManifestDir?: string | undefined;
}

/** What an engine module gets: the dir, its manifest and helpers shared by both engines. */
export interface EngineLoadContext {
  dir: string;
  manifest: ModelManifest | InferredManifest;
  labels: string[];
  input: InputSpec;
  opts: LoadBackboneOptions;
}

export type EngineImpl = Omit<Backbone, 'info'> & {
  embeddingDim: number;
  /** Hex sha256 of the weights as read (checked against the manifest). */
  sha256: string;
  runtime: RuntimeName;
  runtimeSkipped: { backend: RuntimeName; reason: string }[];
};

export function softmaxInPlace(v: Float32Array): Float32Array {
  let max = -Infinity;
  for (const x of v) if (x > max) max = x;
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] = Math.exp((v[i] ?? 0) - max);
  for (let i = 0; i < v.length; i++) v[i] = (v[i] ?? 0) / sum;
  return v;
}

/**
 * Turns raw class scores of one image into probabilities over `labels`: softmax if the model
 * gives logits, background dropped (and the rest renormalised) if it has one.
 */
export function classProbs(raw: Float32Array, labels: number, softmax: boolean, background: boolean): Float32Array {
  const expected = labels + (background ? 1 : 0);
  if (raw.length !== expected) {
    throw new ModelLoadError(
      'MODEL_INVALID',
      `model gives ${raw.length} class scores but the manifest's labels give ${labels}${background ? ' + background' : ''}; check outputs.background and labels.file`,
    );
  }
  const p = softmax ? raw : softmaxInPlace(Float32Array.from(raw));
  if (!background) return p;
  const out = p.slice(1);
  let s = 0;
  for (const x of out) s += x;
  if (s > 0) for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) / s;
  return out;
}

async function readNoticeLine(dir: string, notice: string | undefined): Promise<string | null> {
  if (!notice) return null;
  try {
    const text = await readFile(path.join(dir, notice), 'utf8');
    return text.split('\n').map((l) => l.replace(/^#+\s*/, '').trim()).find(Boolean) ?? null;
  } catch {
    return null;
  }
}

export function sha256Hex(parts: readonly Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Loads the backbone in `modelDir` with the engine its manifest names. Weights are hash-checked. */
export async function loadBackbone(modelDir: string, opts: LoadBackboneOptions = {}): Promise<Backbone> {
  const t0 = performance.now();
  const dir = path.resolve(modelDir);
  const { manifest, origin } = await resolveManifest(dir, opts.repoManifestDir ? { repoManifestDir: opts.repoManifestDir } : {});
  const [labels, source] = await Promise.all([readManifestLabels(dir, manifest), readNoticeLine(dir, manifest.notice)]);
  const ctx: EngineLoadContext = { dir, manifest, labels, input: inputSpec(manifest), opts };
  // Dynamic imports: only the engine this model needs is loaded (tfjs costs ~100 MB with wasm).
  const impl: EngineImpl =
    manifest.engine === 'onnx' ? await (await import('./backbone-onnx.js')).loadOnnxBackbone(ctx) : await (await import('./backbone-tfjs.js')).loadTfjsBackbone(ctx);
  if (manifest.sha256 !== null && impl.sha256 !== manifest.sha256) {
    impl.dispose();
    throw new ModelLoadError(
      'MODEL_INVALID',
      `weights in ${dir} have sha256 ${impl.sha256.slice(0, 12)}… but the manifest (${origin}) expects ${manifest.sha256.slice(0, 12)}…: the files are corrupt or belong to another model; restore them or use the manifest shipped with them`,
    );
  }
  return {
    info: {
      id: manifest.id,
      version: modelVersion(impl.sha256),
      engine: manifest.engine,
      runtime: impl.runtime,
      runtimeSkipped: impl.runtimeSkipped,
      input: ctx.input,
      embeddingDim: impl.embeddingDim,
      labels,
      source,
      licence: manifest.licence,
      manifestOrigin: origin,
      loadMs: performance.now() - t0,
    },
    infer: impl.infer,
    memory: impl.memory,
    dispose: impl.dispose,
  };
}

export interface ImagenetPrediction {
  label: string;
  index: number;
  score: number;
}

export function topKImagenet(probs: Float32Array, labels: readonly string[], k: number): ImagenetPrediction[] {
  const idx = Array.from(probs.keys()).sort((a, b) => (probs[b] ?? 0) - (probs[a] ?? 0)).slice(0, k);
  return idx.map((i) => ({ label: labels[i] ?? String(i), index: i, score: probs[i] ?? 0 }));
}
