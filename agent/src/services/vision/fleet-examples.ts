/**
 * Reads the relay's labelled-examples export (JSON lines, shared labelledExampleLine) as
 * training samples, so `npm run train-head --examples FILE` can train one head for a fleet
 * from every gateway's technician labels. Only examples embedded by the backbone the head is
 * trained for can be used; the others are counted, never mixed in. Every line is validated;
 * a bad line is reported with its number and skipped.
 */
import { readFile } from 'node:fs/promises';
import { labelledExampleLine, NEGATIVE_LABEL } from '@tu/shared';
import { VisionError } from './errors.js';
import type { LabelledEmbedding } from './head.js';
import { l2Normalize } from './vector.js';

export interface FleetExamples {
  samples: LabelledEmbedding[];
  /** Lines embedded by another backbone (id@version → count). */
  otherBackbone: Record<string, number>;
  invalid: { line: number; reason: string }[];
}

export async function readFleetExamples(file: string, backbone: { version: string; embeddingDim: number }, negativeLabel = NEGATIVE_LABEL): Promise<FleetExamples> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    // The operator named the file (--examples): say which and what to do, not a bare ENOENT.
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'it is a directory' : err.code === 'EACCES' ? 'no permission to read it' : err.message;
    throw new VisionError('TRAINING_DATA_INVALID', `cannot read the examples file ${file} (${why}); write it with \`npm run relay -- examples export --tenant <t> --out FILE\` and pass that FILE to --examples`, { cause: err });
  });
  const out: FleetExamples = { samples: [], otherBackbone: {}, invalid: [] };
  text.split('\n').forEach((raw, i) => {
    if (!raw.trim()) return;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (err) {
      out.invalid.push({ line: i + 1, reason: `not JSON (${(err as Error).message})` });
      return;
    }
    const parsed = labelledExampleLine.safeParse(json);
    if (!parsed.success) {
      out.invalid.push({ line: i + 1, reason: parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ') });
      return;
    }
    const e = parsed.data;
    if (e.model.version !== backbone.version || e.embedding.length !== backbone.embeddingDim) {
      const key = `${e.model.id}@${e.model.version}`;
      out.otherBackbone[key] = (out.otherBackbone[key] ?? 0) + 1;
      return;
    }
    out.samples.push({
      label: e.label === NEGATIVE_LABEL ? negativeLabel : e.label,
      embedding: l2Normalize(e.embedding),
      file: `${e.gatewayId}/${e.sha256}`,
      // One machine on one gateway is one group: calibration folds never split it.
      group: `${e.gatewayId}/${e.analysisId}`,
      // Photos taken on site by technicians.
      domain: 'site',
    });
  });
  return out;
}
