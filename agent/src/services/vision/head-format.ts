/**
 * On-disk format of a trained classification head (small JSON), validated
 * with zod on load. Trained heads come from photos whose licences are often
 * unknown: keep them out of the repository (default location .data/head.json).
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { HeadError } from './errors.js';

export const HEAD_FORMAT = 'tu-vision-head';
export const HEAD_VERSION = 1;

const finite = z.number().finite();

const FeaturesSchema = z.object({
  transform: z.enum(['l2', 'center-l2', 'standardize']),
  mean: z.array(finite).optional(),
  scale: z.array(finite.positive()).optional(),
});

const KnnParametersSchema = z.object({
  k: z.number().int().min(1),
  temperature: finite.positive(),
  exampleClass: z.array(z.number().int().nonnegative()),
  vectors: z.array(z.array(finite)).min(1),
});

const LogregParametersSchema = z.object({
  weights: z.array(z.array(finite)).min(2),
  bias: z.array(finite).min(2),
});

const CommonSchema = z.object({
  format: z.literal(HEAD_FORMAT),
  version: z.literal(HEAD_VERSION),
  id: z.string().min(1),
  /** Machine types the head can output (never includes the negative class). */
  labels: z.array(z.string().min(1)).min(1),
  /** Classes of the classifier: labels, plus the negative class if trained with negatives. */
  classes: z.array(z.string().min(1)).min(1),
  negativeLabel: z.string().min(1).nullable(),
  features: FeaturesSchema,
  preprocessing: z.object({ fit: z.enum(['cover', 'fill', 'contain']), tta: z.boolean() }),
  /** Below this the photo is reported as 'unknown'; compared with `unknownMetric`. */
  unknownThreshold: finite,
  unknownMetric: z.enum(['probability', 'similarity']),
  /**
   * Probability calibration fitted on out-of-fold predictions: class scores are divided by
   * `temperature` before the softmax (logreg: logits; k-NN: log-probabilities). Absent = 1.
   */
  calibration: z.object({ temperature: finite.positive(), method: z.string().min(1) }).optional(),
  source: z.object({
    imagesDir: z.string(),
    counts: z.record(z.string(), z.number().int().nonnegative()),
    /** `version` = sha256-<12 hex> of the backbone weights (backbone.ts); a head only runs on that backbone. */
    backbone: z.object({ id: z.string().min(1), version: z.string().min(1), embeddingDim: z.number().int().positive() }),
    /** Hash of the training photos (names, sizes) and options: build:head skips work when unchanged. */
    dataFingerprint: z.string().min(1).optional(),
  }),
  metrics: z.record(z.string(), z.union([finite, z.string(), z.null()])),
  trainedAt: z.iso.datetime(),
});

export const HeadFileSchema = z
  .discriminatedUnion('kind', [
    CommonSchema.extend({ kind: z.literal('knn'), parameters: KnnParametersSchema }),
    CommonSchema.extend({ kind: z.literal('logreg'), parameters: LogregParametersSchema }),
  ])
  .superRefine((h, ctx) => {
    const dim = h.source.backbone.embeddingDim;
    const nc = h.classes.length;
    for (const l of h.labels) if (!h.classes.includes(l)) ctx.addIssue({ code: 'custom', message: `label '${l}' missing from classes` });
    if (h.negativeLabel !== null && !h.classes.includes(h.negativeLabel)) {
      ctx.addIssue({ code: 'custom', message: `negativeLabel '${h.negativeLabel}' missing from classes` });
    }
    if (h.features.mean && h.features.mean.length !== dim) ctx.addIssue({ code: 'custom', message: 'features.mean has wrong dimension' });
    if (h.features.scale && h.features.scale.length !== dim) ctx.addIssue({ code: 'custom', message: 'features.scale has wrong dimension' });
    if (h.kind === 'knn') {
      const p = h.parameters;
      if (p.exampleClass.length !== p.vectors.length) ctx.addIssue({ code: 'custom', message: 'knn exampleClass/vectors length mismatch' });
      if (p.vectors.some((v) => v.length !== dim)) ctx.addIssue({ code: 'custom', message: `knn vectors must have ${dim} dimensions` });
      if (p.exampleClass.some((c) => c >= nc)) ctx.addIssue({ code: 'custom', message: 'knn exampleClass out of range' });
    } else {
      const p = h.parameters;
      if (p.weights.length !== nc || p.bias.length !== nc) ctx.addIssue({ code: 'custom', message: `logreg needs ${nc} weight rows and biases` });
      if (p.weights.some((w) => w.length !== dim)) ctx.addIssue({ code: 'custom', message: `logreg weights must have ${dim} columns` });
    }
  });

export type HeadFile = z.infer<typeof HeadFileSchema>;
export type HeadKind = HeadFile['kind'];

export function parseHead(raw: unknown, origin = 'head'): HeadFile {
  const parsed = HeadFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new HeadError(
      'HEAD_INVALID',
      `${origin} is not a valid ${HEAD_FORMAT} v${HEAD_VERSION} file:\n${z.prettifyError(parsed.error)}\nRe-train it with: tsx agent/scripts/train-head.ts --images DIR --out FILE`,
    );
  }
  return parsed.data;
}

/**
 * A head is bound to the backbone weights it was trained on (sha256-based version):
 * embeddings of another backbone — even of the same size — mean something else.
 */
export function assertHeadFitsBackbone(
  head: HeadFile,
  backbone: { id: string; version: string; embeddingDim: number },
  modelDir: string,
): void {
  const want = head.source.backbone;
  if (want.version === backbone.version && want.embeddingDim === backbone.embeddingDim) return;
  throw new HeadError(
    'HEAD_MISMATCH',
    `head ${head.id} was trained for backbone ${want.id} ${want.version} (${want.embeddingDim}-d) but the model in ${modelDir} is ${backbone.id} ${backbone.version} (${backbone.embeddingDim}-d). ` +
      `Use that model (model.dir), or retrain the head for this one: npm run build:head (default head), or npx tsx agent/scripts/train-head.ts --model ${modelDir} --images DIR --out FILE`,
  );
}

export async function loadHead(file: string): Promise<HeadFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new HeadError('HEAD_INVALID', `cannot read head file ${file}: ${(err as Error).message}; train one with agent/scripts/train-head.ts`, {
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new HeadError('HEAD_INVALID', `head file ${file} is not valid JSON (${(err as Error).message}); re-train it`, { cause: err });
  }
  return parseHead(raw, `head file ${file}`);
}

/**
 * Validates, then writes atomically and durably: tmp file fsynced, renamed, directory fsynced.
 * Without the fsync a power cut (a gateway loses power with the ignition) can leave the new name
 * on an empty or truncated file, which services/run.ts then has to set aside. (The project's
 * shared/src/durable-file.ts only creates files that do not exist yet; a head is replaced.)
 */
export async function saveHead(file: string, head: HeadFile): Promise<void> {
  const valid = parseHead(head, 'head to save');
  const dir = path.dirname(path.resolve(file));
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(valid) + '\n', 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } catch (err) {
    // Some filesystems refuse fsync on a directory (as in shared/src/durable-file.ts); nothing more can be done there.
    if (!['EISDIR', 'EINVAL', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await d.close();
  }
}
