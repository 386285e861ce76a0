import fs from 'node:fs';
import path from 'node:path';
import { TuError, teachLabel, type LabelledExampleLine } from '@tu/shared';
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

/**
 * `exportExamples` into `out`: written beside it, fsynced, then renamed, so a reader never sees
 * half an export; the temporary file is removed when anything fails. A path that cannot be
 * written is an error naming it (a usage error: the operator chose it).
 */
export async function exportExamplesToFile(storage: Storage, f: { tenantId: string; gatewayId?: string | undefined }, out: string): Promise<number> {
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.tmp-${process.pid}`);
  const cannot = (err: unknown): TuError => {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT' ? `the directory ${path.resolve(path.dirname(out))} does not exist; create it or choose another --out`
      : e.code === 'EACCES' || e.code === 'EPERM' ? `no permission to write in ${path.resolve(path.dirname(out))}; choose another --out`
      : e.code === 'ENOSPC' ? 'the disk is full; free space or choose another --out'
      : e.code === 'EISDIR' ? `${out} is a directory; name a file in it`
      : `${e.message}; choose another --out`;
    return new TuError('INVALID_REQUEST', `cannot write --out ${out}: ${why}`, { cause: err });
  };
  // Only the file operations' errors are about --out; a storage error passes as it is.
  const onFile = <T>(op: () => T): T => {
    try {
      return op();
    } catch (err) {
      throw cannot(err);
    }
  };
  const fd = onFile(() => fs.openSync(tmp, 'w', 0o644));
  try {
    let n: number;
    try {
      n = await exportExamples(storage, f, (l) => void onFile(() => fs.writeSync(fd, l)));
      onFile(() => fs.fsyncSync(fd));
    } finally {
      fs.closeSync(fd);
    }
    onFile(() => fs.renameSync(tmp, out));
    return n;
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
