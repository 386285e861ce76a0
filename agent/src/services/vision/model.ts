/**
 * TF.js model loader (used through backbone-tfjs.ts, which backbone.ts imports only for
 * tfjs-graph / tfjs-layers manifests): loads a TF.js graph or layers model from a directory and
 * produces, in one forward pass, ImageNet class probabilities and an embedding.
 *
 * - Graph models (MobileNet v1 TF-Hub): embedding = node
 *   `module_apply_default/MobilenetV1/Logits/global_pool` (256-d for alpha .25);
 *   logits = the graph output (1001, index 0 = background, dropped).
 * - Layers models (Tiny Darknet): embedding = global average pool of the input
 *   of the last Conv2D/Dense layer (the penultimate feature map, 512-d for
 *   Tiny Darknet); logits = model output (1000, own label order).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { ModelLoadError } from './errors.js';
import { artifactsHandler, readModelArtifacts, type ModelKind } from './fs-io-handler.js';

export { INPUT_SIZE } from './preprocess.js';
import { INPUT_SIZE } from './preprocess.js';
import { modelVersion } from './manifest.js';
import type { BackboneOutput } from './backbone.js';
export const DEFAULT_GRAPH_EMBEDDING_NODE = 'module_apply_default/MobilenetV1/Logits/global_pool';

export interface BackboneInfo {
  id: string;
  version: string;
  kind: ModelKind;
  inputSize: number;
  embeddingDim: number;
  labels: readonly string[];
  /** First line of SOURCE.txt if present. */
  source: string | null;
  /** Hex sha256 of model.json followed by the shards in manifest order. */
  sha256: string;
  loadMs: number;
}

export interface Backbone {
  info: BackboneInfo;
  /** Run on a batch [N,224,224,3] in [0,1]. With `flip`, averages with the mirrored image. */
  infer(batch: tf.Tensor4D, opts?: { flip?: boolean }): BackboneOutput[];
  dispose(): void;
}

export interface LoadBackboneOptions {
  /** Graph models only: node whose output is the embedding. */
  embeddingNode?: string | undefined;
  /** Class names (from the model manifest); default labels.json in the dir. */
  labels?: readonly string[] | undefined;
}

const LabelsSchema = z.array(z.string()).min(2);

async function readLabels(modelDir: string): Promise<string[]> {
  const file = path.join(modelDir, 'labels.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ModelLoadError(
      'MODEL_NOT_FOUND',
      `cannot read ${file} (${(err as Error).message}); put a JSON array of class names next to model.json`,
      { cause: err },
    );
  }
  const parsed = LabelsSchema.safeParse(raw);
  if (!parsed.success) throw new ModelLoadError('MODEL_INVALID', `${file} must be a JSON array of strings`);
  return parsed.data;
}

async function readSourceLine(modelDir: string): Promise<string | null> {
  try {
    const text = await readFile(path.join(modelDir, 'SOURCE.txt'), 'utf8');
    return text.split('\n')[0]?.trim() || null;
  } catch {
    return null;
  }
}

function softmaxRows(logits: tf.Tensor2D, dropFirst: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    const probs = tf.softmax(logits);
    if (!dropFirst) return probs;
    const [n, c] = probs.shape;
    return probs.slice([0, 1], [n, c - 1]);
  });
}

function toRows(t: tf.Tensor2D): Float32Array[] {
  const data = t.dataSync() as Float32Array;
  const [n, c] = t.shape;
  const rows: Float32Array[] = [];
  for (let i = 0; i < n; i++) rows.push(data.slice(i * c, (i + 1) * c));
  return rows;
}

/** Runs the model once; if flip, also on the mirrored batch, averaging probs and embeddings. */
function withFlip(
  run: (x: tf.Tensor4D) => [tf.Tensor2D, tf.Tensor2D],
  batch: tf.Tensor4D,
  flip: boolean,
): BackboneOutput[] {
  const [probsT, embT] = tf.tidy(() => {
    const [p, e] = run(batch);
    if (!flip) return [p, e];
    const [pf, ef] = run(tf.reverse(batch, 2));
    return [tf.div(tf.add(p, pf), 2) as tf.Tensor2D, tf.div(tf.add(e, ef), 2) as tf.Tensor2D];
  });
  try {
    const probs = toRows(probsT);
    const embs = toRows(embT);
    return probs.map((p, i) => ({ probs: p, embedding: embs[i] as Float32Array }));
  } finally {
    probsT.dispose();
    embT.dispose();
  }
}

async function loadGraph(
  artifacts: tf.io.ModelArtifacts,
  labels: readonly string[],
  opts: LoadBackboneOptions,
): Promise<Omit<Backbone, 'info'> & { embeddingDim: number }> {
  const model = await tf.loadGraphModel(artifactsHandler(artifacts));
  const embeddingNode = opts.embeddingNode ?? DEFAULT_GRAPH_EMBEDDING_NODE;
  const output = model.outputs[0]?.name;
  if (!output) throw new ModelLoadError('MODEL_INVALID', 'graph model has no outputs');
  const run = (x: tf.Tensor4D): [tf.Tensor2D, tf.Tensor2D] => {
    let res: tf.Tensor | tf.Tensor[];
    try {
      res = model.execute(x, [output, embeddingNode]);
    } catch (err) {
      throw new ModelLoadError(
        'MODEL_INVALID',
        `graph model cannot produce embedding node '${embeddingNode}': ${(err as Error).message}; pass embeddingNode for non-MobileNet graphs`,
        { cause: err },
      );
    }
    const [logits, emb] = res as tf.Tensor[];
    if (!logits || !emb) throw new ModelLoadError('MODEL_INVALID', 'graph model did not return logits and embedding');
    const n = x.shape[0];
    const l2 = logits.reshape([n, -1]) as tf.Tensor2D;
    const dropFirst = l2.shape[1] === labels.length + 1;
    if (!dropFirst && l2.shape[1] !== labels.length) {
      throw new ModelLoadError('MODEL_INVALID', `model has ${l2.shape[1]} logits but labels.json has ${labels.length} names`);
    }
    return [softmaxRows(l2, dropFirst), emb.reshape([n, -1]) as tf.Tensor2D];
  };
  // Probe once to learn the embedding size (also warms up the backend kernels).
  const probe = withFlip(run, tf.zeros([1, INPUT_SIZE, INPUT_SIZE, 3]) as tf.Tensor4D, false)[0];
  return {
    embeddingDim: probe?.embedding.length ?? 0,
    infer: (batch, o) => withFlip(run, batch, o?.flip ?? false),
    dispose: () => model.dispose(),
  };
}

async function loadLayers(
  artifacts: tf.io.ModelArtifacts,
  labels: readonly string[],
): Promise<Omit<Backbone, 'info'> & { embeddingDim: number }> {
  const model = await tf.loadLayersModel(artifactsHandler(artifacts));
  const lastWeighted = [...model.layers].reverse().find((l) => {
    const cls = l.getClassName();
    return cls === 'Conv2D' || cls === 'Dense';
  });
  if (!lastWeighted) throw new ModelLoadError('MODEL_INVALID', 'layers model has no Conv2D/Dense classifier layer');
  const featureInput = lastWeighted.input;
  if (Array.isArray(featureInput)) throw new ModelLoadError('MODEL_INVALID', 'classifier layer has several inputs');
  const outputs = model.outputs[0];
  if (!outputs) throw new ModelLoadError('MODEL_INVALID', 'layers model has no outputs');
  const dual = tf.model({ inputs: model.inputs, outputs: [outputs, featureInput] });
  const run = (x: tf.Tensor4D): [tf.Tensor2D, tf.Tensor2D] => {
    const [logits, feat] = dual.predict(x) as tf.Tensor[];
    if (!logits || !feat) throw new ModelLoadError('MODEL_INVALID', 'layers model did not return logits and features');
    const n = x.shape[0];
    const emb = feat.rank === 4 ? tf.mean(feat, [1, 2]) : feat.reshape([n, -1]);
    const l2 = logits.reshape([n, -1]) as tf.Tensor2D;
    if (l2.shape[1] !== labels.length) {
      throw new ModelLoadError('MODEL_INVALID', `model has ${l2.shape[1]} outputs but labels.json has ${labels.length} names`);
    }
    return [softmaxRows(l2, false), emb as tf.Tensor2D];
  };
  const probe = withFlip(run, tf.zeros([1, INPUT_SIZE, INPUT_SIZE, 3]) as tf.Tensor4D, false)[0];
  return {
    embeddingDim: probe?.embedding.length ?? 0,
    infer: (batch, o) => withFlip(run, batch, o?.flip ?? false),
    dispose: () => model.dispose(),
  };
}

/** Load a backbone from `modelDir` (model.json + shards + labels.json [+ SOURCE.txt]). Call initBackend() first. */
export async function loadBackbone(modelDir: string, opts: LoadBackboneOptions = {}): Promise<Backbone> {
  const t0 = performance.now();
  const dir = path.resolve(modelDir);
  const [{ artifacts, kind, byteParts }, labels, source] = await Promise.all([
    readModelArtifacts(dir),
    opts.labels ? Promise.resolve([...opts.labels]) : readLabels(dir),
    readSourceLine(dir),
  ]);
  const hash = createHash('sha256');
  for (const part of byteParts) hash.update(part);
  const sha256 = hash.digest('hex');
  const version = modelVersion(sha256);
  let impl: Omit<Backbone, 'info'> & { embeddingDim: number };
  try {
    impl = kind === 'graph' ? await loadGraph(artifacts, labels, opts) : await loadLayers(artifacts, labels);
  } catch (err) {
    if (err instanceof ModelLoadError) throw err;
    throw new ModelLoadError('MODEL_INVALID', `TF.js could not build the ${kind} model in ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return {
    info: {
      id: path.basename(dir),
      version,
      kind,
      inputSize: INPUT_SIZE,
      embeddingDim: impl.embeddingDim,
      labels,
      source,
      sha256,
      loadMs: performance.now() - t0,
    },
    infer: impl.infer,
    dispose: impl.dispose,
  };
}
