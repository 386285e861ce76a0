/**
 * Labelled photo sets for training/evaluating heads, with the provenance needed for an
 * honest split: each photo's domain (site photos vs catalogue shots) and its source group
 * (MANIFEST.csv `source_repo` + the folder of `source_path`: one contractor's folder is
 * usually the same machine). groups.ts later merges near-duplicate embeddings into the same group.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { listLabelledImages, type LabelledImage } from './dataset.js';
import { HeadError } from './errors.js';

/** site = photos like the gateway takes (testdata/images); catalogue = dealer shots (testdata/train). */
export type Domain = 'site' | 'catalogue';

export interface TrainingPhoto extends LabelledImage {
  domain: Domain;
  /** Source group key; photos of one group are never on both sides of a split. */
  group: string;
}

const ManifestRowSchema = z.object({
  file: z.string().min(1),
  type: z.string().min(1),
  source_repo: z.string(),
  source_path: z.string(),
});

/** Minimal RFC 4180 CSV: quoted fields with "" escapes and embedded commas/newlines. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (row.some((f) => f !== '')) rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  row.push(field);
  if (row.some((f) => f !== '')) rows.push(row);
  return rows;
}

/** file (relative, '/'-separated) → group key, from `<dir>/MANIFEST.csv`; empty map if there is none. */
export async function readSourceGroups(dir: string): Promise<Map<string, string>> {
  const file = path.join(dir, 'MANIFEST.csv');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return new Map();
  }
  const [header, ...rows] = parseCsv(text);
  if (!header) return new Map();
  const out = new Map<string, string>();
  for (const [i, cells] of rows.entries()) {
    const parsed = ManifestRowSchema.safeParse(Object.fromEntries(header.map((h, j) => [h, cells[j] ?? ''])));
    if (!parsed.success) {
      throw new HeadError(
        'TRAINING_DATA_INVALID',
        `${file} row ${i + 2} is not file,type,source_repo,…,source_path: ${z.prettifyError(parsed.error)}; fix the row or remove MANIFEST.csv (photos are then grouped by file name)`,
      );
    }
    const r = parsed.data;
    const folder = path.posix.dirname(r.source_path.replace(/\\/g, '/'));
    out.set(r.file, r.source_repo ? `${r.source_repo}:${folder}` : `file:${r.file}`);
  }
  return out;
}

/** Lists one folder-per-type set; photos missing from MANIFEST.csv form their own group. */
export async function listTrainingPhotos(dir: string, domain: Domain): Promise<TrainingPhoto[]> {
  const [images, groups] = await Promise.all([listLabelledImages(dir), readSourceGroups(dir)]);
  return images.map((img) => {
    const rel = path.relative(dir, img.file).split(path.sep).join('/');
    return { ...img, domain, group: groups.get(rel) ?? `file:${domain}:${rel}` };
  });
}
