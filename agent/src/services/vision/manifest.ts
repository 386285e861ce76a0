/**
 * Model manifest: what the engine needs to know about a backbone model that the
 * weights file itself does not say (input layout and normalisation, which outputs
 * are the embedding and the class probabilities, labels, licence notice).
 *
 * Resolution for a model directory (first match wins, see README.md "Model manifests"):
 *   1. `<modelDir>/manifest.json`      (release artifact: model files + manifest in one folder)
 *   2. `agent/models/<dir name>.manifest.json`  (known models whose folder is read-only, e.g. ../shared)
 *   3. a TF.js `model.json` in the dir → manifest inferred (graph or layers, [0,1] NHWC input)
 * Nothing found → MODEL_NOT_FOUND naming all three places.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ModelLoadError } from './errors.js';
import { detectModelKind, readModelJson } from './fs-io-handler.js';

export const MANIFEST_FORMAT = 'tu-model-manifest';
export const MANIFEST_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';

/** Repository folder holding manifests of known models (agent/models). */
export const REPO_MANIFEST_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../models');

const relFile = z
  .string()
  .min(1)
  .refine((p) => !path.isAbsolute(p) && !p.split(/[\\/]/).includes('..'), 'must be a path inside the model directory');
const triple = z.tuple([z.number().finite(), z.number().finite(), z.number().finite()]);

/**
 * Normalisation from 8-bit RGB `v` to the model's input value:
 * `{mean, scale}` → (v - mean) / scale (per channel or one number for all);
 * `{range: [lo, hi]}` → lo + v / 255 * (hi - lo).
 */
const NormalizeSchema = z.union([
  z.object({ mean: z.union([z.number().finite(), triple]), scale: z.union([z.number().finite().positive(), triple]) }).strict(),
  z.object({ range: z.tuple([z.number().finite(), z.number().finite()]) }).strict(),
]);

export const ModelManifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    version: z.literal(MANIFEST_VERSION),
    /** Stable model id (defaults to the directory name when inferred). */
    id: z.string().min(1).max(128),
    engine: z.enum(['onnx', 'tfjs-graph', 'tfjs-layers']),
    /** The model file: model.onnx or model.json. */
    file: relFile,
    /**
     * sha256 (hex) of the weights: the .onnx file, or for TF.js model.json followed by its
     * shards in manifest order. Checked on every load; also the backbone version heads are bound to.
     */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
    input: z
      .object({
        /** Graph input name (ONNX; ignored by TF.js which has one input). */
        name: z.string().min(1).optional(),
        layout: z.enum(['NCHW', 'NHWC']),
        size: z.number().int().min(32).max(1024),
        normalize: NormalizeSchema,
      })
      .strict(),
    outputs: z
      .object({
        /**
         * ONNX: output name. TF.js graph: node name (e.g. …/Logits/global_pool). TF.js layers:
         * omit to use the global average pool of the classifier layer's input.
         */
        embedding: z.string().min(1).optional(),
        /** ONNX: output name. TF.js: omit to use the model's first output. */
        probs: z.string().min(1).optional(),
        /** Whether `probs` is already a softmax (else softmax is applied). */
        softmax: z.boolean(),
        /** First class is "background" (dropped, and so is the first label). */
        background: z.boolean(),
      })
      .strict(),
    labels: z.object({ file: relFile, format: z.enum(['lines', 'json']) }).strict(),
    licence: z.string().min(1).max(200),
    /** File whose text must ship with the weights (provenance / licence notice). */
    notice: relFile.optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.engine === 'onnx' && (!m.input.name || !m.outputs.embedding || !m.outputs.probs)) {
      ctx.addIssue({ code: 'custom', message: 'onnx models need input.name, outputs.embedding and outputs.probs (the graph names)' });
    }
  });

export type ModelManifest = z.infer<typeof ModelManifestSchema>;
export type ModelEngineKind = ModelManifest['engine'];

/** Per-channel (v - mean) / scale, resolved from either normalisation form. */
export interface InputSpec {
  layout: 'NCHW' | 'NHWC';
  size: number;
  mean: [number, number, number];
  scale: [number, number, number];
}

export function inputSpec(m: Pick<ModelManifest, 'input'>): InputSpec {
  const n = m.input.normalize;
  const t = (x: number | [number, number, number]): [number, number, number] => (typeof x === 'number' ? [x, x, x] : x);
  if ('range' in n) {
    const [lo, hi] = n.range;
    // lo + v/255*(hi-lo) = (v - mean)/scale with scale = 255/(hi-lo), mean = -lo*scale
    const scale = 255 / (hi - lo);
    return { layout: m.input.layout, size: m.input.size, mean: t(-lo * scale), scale: t(scale) };
  }
  return { layout: m.input.layout, size: m.input.size, mean: t(n.mean), scale: t(n.scale) };
}

export interface ResolvedManifest {
  manifest: ModelManifest | InferredManifest;
  /** Where it came from: a file path, or 'inferred from model.json'. */
  origin: string;
}

/** A TF.js model dir without a manifest: everything but the hash is known from model.json. */
export type InferredManifest = Omit<ModelManifest, 'sha256'> & { sha256: null };

export function parseManifest(raw: unknown, origin: string): ModelManifest {
  const parsed = ModelManifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ModelLoadError(
      'MODEL_INVALID',
      `${origin} is not a valid ${MANIFEST_FORMAT} v${MANIFEST_VERSION} manifest:\n${z.prettifyError(parsed.error)}\nFix the file (see agent/src/services/vision/README.md, "Model manifests") or delete it to fall back to the next source`,
    );
  }
  return parsed.data;
}

async function readManifestFile(file: string): Promise<ModelManifest | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ModelLoadError('MODEL_INVALID', `cannot read model manifest ${file}: ${(err as Error).message}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError('MODEL_INVALID', `model manifest ${file} is not valid JSON (${(err as Error).message}); fix or delete it`, { cause: err });
  }
  return parseManifest(raw, `model manifest ${file}`);
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** TF.js models from before manifests: [0,1] NHWC RGB input, logits output (MODELS.md). */
async function inferTfjsManifest(dir: string): Promise<InferredManifest> {
  const kind = detectModelKind(await readModelJson(dir));
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    id: path.basename(dir),
    engine: kind === 'graph' ? 'tfjs-graph' : 'tfjs-layers',
    file: 'model.json',
    sha256: null,
    input: { layout: 'NHWC', size: 224, normalize: { range: [0, 1] } },
    // Graph models: the MobileNet v1 pool node is the only embedding we know of (model.ts default).
    outputs: { softmax: false, background: kind === 'graph' ? true : false },
    labels: { file: 'labels.json', format: 'json' },
    licence: 'unknown (no manifest)',
    ...((await exists(path.join(dir, 'SOURCE.txt'))) ? { notice: 'SOURCE.txt' } : {}),
  };
}

/**
 * The version a backbone goes by: `sha256-` and 12 hex digits of its weights' sha256 (the
 * manifest's `sha256`, which loading checks the weights against). Heads are bound to it
 * (`source.backbone.version`), health reports it, and a release records it in release.json
 * (scripts/release/model.ts).
 */
export const modelVersion = (sha256: string): string => `sha256-${sha256.slice(0, 12)}`;

/** Finds the manifest for `modelDir` (see the file comment for the order). */
export async function resolveManifest(modelDir: string, opts: { repoManifestDir?: string } = {}): Promise<ResolvedManifest> {
  const dir = path.resolve(modelDir);
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new ModelLoadError(
      'MODEL_NOT_FOUND',
      `model directory ${dir} not found (${(err as Error).message}); set model.dir / MODEL_DIR to a folder such as ../shared/models/mobilenet_v2_100_224_quant`,
      { cause: err },
    );
  }
  const inDir = path.join(dir, MANIFEST_FILE);
  const own = await readManifestFile(inDir);
  if (own) return { manifest: own, origin: inDir };
  const repoFile = path.join(opts.repoManifestDir ?? REPO_MANIFEST_DIR, `${path.basename(dir)}.manifest.json`);
  const known = await readManifestFile(repoFile);
  if (known) return { manifest: known, origin: repoFile };
  if (await exists(path.join(dir, 'model.json'))) return { manifest: await inferTfjsManifest(dir), origin: 'inferred from model.json' };
  throw new ModelLoadError(
    'MODEL_NOT_FOUND',
    `no model manifest for ${dir}: looked for ${inDir}, ${repoFile} and a TF.js model.json. Add a manifest.json next to the weights (format in agent/src/services/vision/README.md)`,
  );
}

/** Labels in model output order, with the background class removed when the model has one. */
export async function readManifestLabels(dir: string, m: Pick<ModelManifest, 'labels' | 'outputs'>): Promise<string[]> {
  const file = path.join(dir, m.labels.file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ModelLoadError('MODEL_NOT_FOUND', `cannot read labels ${file} named by the model manifest: ${(err as Error).message}`, { cause: err });
  }
  let labels: string[];
  if (m.labels.format === 'lines') {
    labels = text.split(/\r?\n/).map((l) => l.trim());
    while (labels.length && labels[labels.length - 1] === '') labels.pop();
  } else {
    let raw: unknown = null;
    try {
      raw = JSON.parse(text);
    } catch {
      // reported below as not an array of names
    }
    const parsed = z.array(z.string()).min(2).safeParse(raw);
    if (!parsed.success) throw new ModelLoadError('MODEL_INVALID', `${file} must be a JSON array of class names`);
    labels = parsed.data;
  }
  // A lines file of a model with background lists it first; JSON label files (TF-Hub, ml5) never do.
  return m.labels.format === 'lines' && m.outputs.background ? labels.slice(1) : labels;
}
