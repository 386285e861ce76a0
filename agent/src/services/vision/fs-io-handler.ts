/**
 * A tf.io.IOHandler that loads a TF.js model (graph or layers) from a local
 * directory with node:fs. Plain @tensorflow/tfjs has no file:// loader without
 * tfjs-node, so we read model.json and the weight shards ourselves.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { ModelLoadError } from './errors.js';

const WeightSpecSchema = z.looseObject({
  name: z.string().min(1),
  shape: z.array(z.number().int().nonnegative()),
  dtype: z.enum(['float32', 'int32', 'bool', 'string', 'complex64']),
});

const ManifestGroupSchema = z.object({
  paths: z.array(z.string().min(1)).min(1),
  weights: z.array(WeightSpecSchema),
});

/** The essentials of model.json we rely on; other fields pass through. */
export const ModelJsonSchema = z.looseObject({
  modelTopology: z.record(z.string(), z.unknown()),
  weightsManifest: z.array(ManifestGroupSchema).min(1),
  format: z.string().optional(),
  generatedBy: z.string().optional(),
  convertedBy: z.string().nullable().optional(),
  signature: z.record(z.string(), z.unknown()).optional(),
  userDefinedMetadata: z.record(z.string(), z.unknown()).optional(),
  modelInitializer: z.record(z.string(), z.unknown()).optional(),
});
export type ModelJson = z.infer<typeof ModelJsonSchema>;

export type ModelKind = 'graph' | 'layers';

export function detectModelKind(json: ModelJson): ModelKind {
  if (json.format === 'graph-model' || Array.isArray(json.modelTopology['node'])) return 'graph';
  if (json.format === 'layers-model' || 'model_config' in json.modelTopology || 'class_name' in json.modelTopology) {
    return 'layers';
  }
  throw new ModelLoadError(
    'MODEL_INVALID',
    'model.json is neither a TF.js graph model (modelTopology.node) nor a layers model (modelTopology.model_config); re-export it with tensorflowjs_converter',
  );
}

export async function readModelJson(modelDir: string): Promise<ModelJson> {
  const file = path.join(modelDir, 'model.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ModelLoadError(
      'MODEL_NOT_FOUND',
      `cannot read ${file}: ${(err as Error).message}. Set MODEL_DIR to the directory holding model.json (e.g. ../shared/models/mobilenet_v1_025_224_tfhub)`,
      { cause: err },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError('MODEL_INVALID', `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = ModelJsonSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ModelLoadError('MODEL_INVALID', `${file} is not a TF.js model.json: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

export interface LoadedArtifacts {
  artifacts: tf.io.ModelArtifacts;
  json: ModelJson;
  kind: ModelKind;
  /** Raw bytes of model.json followed by all shards, for content hashing. */
  byteParts: Buffer[];
}

export async function readModelArtifacts(modelDir: string): Promise<LoadedArtifacts> {
  const json = await readModelJson(modelDir);
  const kind = detectModelKind(json);
  const root = path.resolve(modelDir);
  const shards: Buffer[] = [];
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const file = path.resolve(root, p);
      if (!file.startsWith(root + path.sep)) {
        throw new ModelLoadError('MODEL_INVALID', `weight shard path '${p}' escapes the model directory ${root}`);
      }
      try {
        shards.push(await readFile(file));
      } catch (err) {
        throw new ModelLoadError('MODEL_NOT_FOUND', `missing weight shard ${file}: ${(err as Error).message}`, { cause: err });
      }
    }
    for (const w of group.weights) weightSpecs.push(w as tf.io.WeightsManifestEntry);
  }
  const total = shards.reduce((n, b) => n + b.byteLength, 0);
  const weightData = new ArrayBuffer(total);
  const view = new Uint8Array(weightData);
  let off = 0;
  for (const b of shards) {
    view.set(b, off);
    off += b.byteLength;
  }
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology as object,
    weightSpecs,
    weightData,
    convertedBy: json.convertedBy ?? null,
    ...(json.format !== undefined ? { format: json.format } : {}),
    ...(json.generatedBy !== undefined ? { generatedBy: json.generatedBy } : {}),
    ...(json.signature ? { signature: json.signature as object } : {}),
    ...(json.userDefinedMetadata ? { userDefinedMetadata: json.userDefinedMetadata as NonNullable<tf.io.ModelArtifacts['userDefinedMetadata']> } : {}),
    ...(json.modelInitializer ? { modelInitializer: json.modelInitializer as object } : {}),
  };
  const jsonBytes = await readFile(path.join(root, 'model.json'));
  return { artifacts, json, kind, byteParts: [jsonBytes, ...shards] };
}

/** Wrap already-read artifacts as an IOHandler for tf.loadGraphModel / tf.loadLayersModel. */
export function artifactsHandler(artifacts: tf.io.ModelArtifacts): tf.io.IOHandler {
  return { load: async () => artifacts };
}

/** Standalone handler: `tf.loadGraphModel(fileSystemHandler(dir))`. */
export function fileSystemHandler(modelDir: string): tf.io.IOHandler {
  return { load: async () => (await readModelArtifacts(modelDir)).artifacts };
}
