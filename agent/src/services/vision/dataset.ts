/** Folder-per-type labelled photo sets and seeded stratified splits. */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { HeadError } from './errors.js';
import { seededRandom, shuffled } from './vector.js';

/** Folders of the test-photo set that are not machine types. */
export const DEFAULT_IGNORED_FOLDERS: readonly string[] = ['exif_gps', 'nameplate_text', 'SOURCES'];
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif', '.heic', '.heif'];

export interface LabelledImage {
  file: string;
  label: string;
}

export interface ListOptions {
  ignore?: readonly string[];
  /** Only these folders (if given). */
  only?: readonly string[];
}

export async function listLabelledImages(imagesDir: string, opts: ListOptions = {}): Promise<LabelledImage[]> {
  const ignore = new Set(opts.ignore ?? DEFAULT_IGNORED_FOLDERS);
  let entries;
  try {
    entries = await readdir(imagesDir, { withFileTypes: true });
  } catch (err) {
    throw new HeadError('TRAINING_DATA_INVALID', `cannot read images directory ${imagesDir}: ${(err as Error).message}`, { cause: err });
  }
  const out: LabelledImage[] = [];
  for (const e of entries.filter((x) => x.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    if (ignore.has(e.name) || e.name.startsWith('.')) continue;
    if (opts.only && !opts.only.includes(e.name)) continue;
    const dir = path.join(imagesDir, e.name);
    const files = (await readdir(dir, { withFileTypes: true }))
      .filter((f) => f.isFile() && IMAGE_EXTENSIONS.includes(path.extname(f.name).toLowerCase()))
      .map((f) => f.name)
      .sort();
    for (const f of files) out.push({ file: path.join(dir, f), label: e.name });
  }
  if (!out.length) {
    throw new HeadError('TRAINING_DATA_INVALID', `no images found in ${imagesDir}: expected one sub-folder per machine type (plus negative/)`);
  }
  return out;
}

export function countByLabel(items: readonly { label: string }[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const i of items) c[i.label] = (c[i.label] ?? 0) + 1;
  return c;
}

/**
 * Seeded stratified split: per label, round(n * testFraction) photos go to the
 * test set, but at least one always stays in training (so single-photo
 * types are never tested).
 */
export function stratifiedSplit<T extends { label: string }>(items: readonly T[], testFraction: number, seed: number): { train: T[]; test: T[] } {
  const rand = seededRandom(seed);
  const byLabel = new Map<string, T[]>();
  for (const it of items) byLabel.set(it.label, [...(byLabel.get(it.label) ?? []), it]);
  const train: T[] = [];
  const test: T[] = [];
  for (const label of [...byLabel.keys()].sort()) {
    const group = shuffled(byLabel.get(label) ?? [], rand);
    const nTest = Math.min(group.length - 1, Math.round(group.length * testFraction));
    test.push(...group.slice(0, nTest));
    train.push(...group.slice(nTest));
  }
  return { train, test };
}
