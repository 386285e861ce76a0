import { cursorOf } from '../storage/sql-storage.js';
import type { LabelledExampleRow, Storage } from '../storage/types.js';

/**
 * One line of `examples export` (JSON lines, one labelled example per line; format documented
 * in relay/README.md "Labelled examples"). `label` is a machine type or `negative`; the
 * embedding comes from backbone `model.id`@`model.version` and must match the backbone a head
 * is trained for.
 */
export interface ExampleLine {
  label: string;
  embedding: number[];
  sha256: string;
  gatewayId: string;
  analysisId: string;
  at: string;
  previousLabel: string;
  kind: 'confirmation' | 'correction';
  by: string;
  correctionId: string;
  model: { id: string; version: string; headId: string | null };
}

export const toExampleLine = (x: LabelledExampleRow): ExampleLine => ({
  label: x.label,
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
