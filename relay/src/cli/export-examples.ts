import { teachLabel, type LabelledExampleLine } from '@tu/shared';
import { cursorOf } from '../storage/sql-storage.js';
import type { LabelledExampleRow, Storage } from '../storage/types.js';

/** One line of `examples export`: the format lives in shared (shared/src/schemas/teach.ts), which train-head reads back. */
export type ExampleLine = LabelledExampleLine;

export const toExampleLine = (x: LabelledExampleRow): ExampleLine => ({
  // Validated when ingested; parsed again so the line type holds (relay/src/ingest).
  label: teachLabel.parse(x.label),
  embedding: x.embedding,
  sha256: x.sha256,
  gatewayId: x.gatewayId,
  analysisId: x.analysisId,
  at: x.at,
  previousLabel: x.previousLabel,
  kind: x.kind,
  by: x.by,
  correctionId: x.id,
  model: { id: x.modelId, version: x.modelVersion, headId: x.headId },
});

/** Writes the tenant's current labelled examples, oldest first, page by page; resolves the count. */
export async function exportExamples(storage: Storage, f: { tenantId: string; gatewayId?: string | undefined }, write: (line: string) => void | Promise<void>): Promise<number> {
  let after: string | undefined;
  let n = 0;
  for (;;) {
    const p = await storage.listLabelledExamples({ tenantId: f.tenantId, gatewayId: f.gatewayId, first: 500, after });
    for (const x of p.items) {
      await write(`${JSON.stringify(toExampleLine(x))}\n`);
      n++;
    }
    const last = p.items.at(-1);
    if (!p.hasNextPage || !last) return n;
    after = cursorOf.example(last);
  }
}
