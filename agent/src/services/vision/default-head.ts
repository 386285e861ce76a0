/**
 * The default head that ships: trained from the site photos (testdata/images) plus the
 * catalogue photos (testdata/train), source-grouped calibration, bound to the backbone's
 * sha256 version. `npm run build:head` (agent/scripts/build-head.ts) writes it to
 * dist/head/default-head.json and skips the work when that file already matches the
 * backbone and the training-data fingerprint. Options below were chosen by
 * agent/scripts/eval.ts on a source-grouped split (README.md, "Default head").
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { embedImages, type EmbeddedImage } from './embed-dataset.js';
import { createVisionEngine } from './engine.js';
import { mergeNearDuplicates } from './groups.js';
import { trainHead, type HeadTrainOptions } from './head.js';
import { loadHead, saveHead, type HeadFile } from './head-format.js';
import { listTrainingPhotos, type TrainingPhoto } from './training-set.js';

/** Relative to the repository root; git-ignored (derived from photos of unknown licence). */
export const DEFAULT_HEAD_FILE = 'dist/head/default-head.json';

export const DEFAULT_HEAD_TRAINING: Pick<HeadTrainOptions, 'kind' | 'solver' | 'domainWeights' | 'l2' | 'calibrationDomain'> = {
  kind: 'logreg',
  solver: 'ridge',
  // Grouped eval, 2 seeds (README.md "Evaluation"): catalogue 0.3–1 and λ 1–10 all within ±3 points;
  // 0.5 / 3 had the best mean top-1 and held-out ECE ≤ 0.08. Site-only (weight 0) was ~25 points worse.
  domainWeights: { site: 1, catalogue: 0.5 },
  l2: 3,
  calibrationDomain: 'site',
};

export interface DefaultHeadSources {
  modelDir: string;
  /** Site photos: folder per type + negative/ (+ MANIFEST.csv). */
  siteDir: string;
  /** Catalogue photos, same layout; optional. */
  catalogueDir?: string | undefined;
}

export interface EmbeddedTrainingPhoto extends EmbeddedImage {
  domain: TrainingPhoto['domain'];
  /** Source group merged with near-duplicates (groups.ts). */
  group: string;
}

export async function listDefaultTrainingPhotos(src: DefaultHeadSources): Promise<TrainingPhoto[]> {
  return [...(await listTrainingPhotos(src.siteDir, 'site')), ...(src.catalogueDir ? await listTrainingPhotos(src.catalogueDir, 'catalogue') : [])];
}

/** sha256 over every photo's label, domain, relative name and size, plus the training options. */
export async function trainingFingerprint(photos: readonly TrainingPhoto[], options: unknown): Promise<string> {
  const h = createHash('sha256').update(JSON.stringify(options));
  for (const p of photos) h.update(`${p.domain}\0${p.label}\0${path.basename(p.file)}\0${(await stat(p.file)).size}\n`);
  return `sha256-${h.digest('hex').slice(0, 16)}`;
}

/** Embeds photos with the backbone in `modelDir` and merges near-duplicate source groups. */
export async function embedTrainingPhotos(
  modelDir: string,
  photos: readonly TrainingPhoto[],
  onProgress?: (done: number, total: number) => void,
): Promise<{ embedded: EmbeddedTrainingPhoto[]; backbone: { id: string; version: string; embeddingDim: number }; failures: string[] }> {
  const engine = await createVisionEngine({ modelDir });
  const m = engine.info().model;
  try {
    const { embedded, failures } = await embedImages(engine, photos, onProgress);
    const byFile = new Map(photos.map((p) => [p.file, p]));
    const withMeta = embedded.map((e) => ({ ...e, domain: byFile.get(e.file)?.domain ?? 'site', group: byFile.get(e.file)?.group ?? e.file }));
    const merged = mergeNearDuplicates(withMeta.map((e) => e.group), withMeta.map((e) => e.embedding));
    return {
      embedded: withMeta.map((e, i) => ({ ...e, group: merged[i] ?? e.group })),
      backbone: { id: m.id, version: m.version, embeddingDim: m.embeddingDim },
      failures: failures.map((f) => `${f.file}: ${f.code} ${f.message}`),
    };
  } finally {
    engine.dispose();
  }
}

export interface BuildResult {
  head: HeadFile;
  file: string;
  /** True when the existing file already matched backbone and data. */
  upToDate: boolean;
  failures: string[];
}

/** Builds (or keeps) the default head at `out`. */
export async function buildDefaultHead(
  src: DefaultHeadSources,
  out: string,
  log: (line: string) => void = () => {},
): Promise<BuildResult> {
  const photos = await listDefaultTrainingPhotos(src);
  const fingerprint = await trainingFingerprint(photos, DEFAULT_HEAD_TRAINING);
  const probe = await createVisionEngine({ modelDir: src.modelDir });
  const backboneVersion = probe.info().model.version;
  probe.dispose();
  try {
    const existing = await loadHead(out);
    if (existing.source.backbone.version === backboneVersion && existing.source.dataFingerprint === fingerprint) {
      return { head: existing, file: out, upToDate: true, failures: [] };
    }
    log(`existing ${out} is for backbone ${existing.source.backbone.version} / data ${existing.source.dataFingerprint ?? '?'}: rebuilding`);
  } catch {
    // missing or unreadable: build it
  }
  log(`embedding ${photos.length} photos with ${path.basename(src.modelDir)} …`);
  const { embedded, backbone, failures } = await embedTrainingPhotos(src.modelDir, photos);
  const head = trainHead(embedded, {
    ...DEFAULT_HEAD_TRAINING,
    imagesDir: [src.siteDir, src.catalogueDir].filter(Boolean).join(path.delimiter),
    backbone,
    preprocessing: { fit: 'cover', tta: false },
    dataFingerprint: fingerprint,
  });
  await saveHead(out, head);
  return { head, file: out, upToDate: false, failures };
}
