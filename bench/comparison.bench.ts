/**
 * What a comparison costs as a machine's photo history grows (`npm run bench -- comparison`):
 * the comparison service (agent/src/services/comparison/service.ts) reads the machine's
 * earlier photos from the history (device/history.ts) and scores each embedding against the
 * new photo's (verdict.ts), on the agent's main thread. The history's size is
 * `comparison.historyPerMachine`, whose upper bound (firmware-config/src/schema.ts) comes from
 * these figures. Embeddings are random, 1,280 floats (the default backbone's length): the cost
 * does not depend on their values.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openPhotoHistory } from '@tu/agent/internal/device/history';
import { compare } from '@tu/agent/internal/services/comparison/verdict';
import { HISTORY_PER_MACHINE_MAX } from '@tu/firmware-config';
import { fmt, median, table } from './stats.js';

const DIM = 1280;

export default async function comparisonBench(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tu-bench-comparison-'));
  const rows: (string | number)[][] = [['history rows', 'comparison median ms (5 runs)', 'of it: history read ms', 'RSS growth MB (first run)']];
  try {
    for (const n of [200, HISTORY_PER_MACHINE_MAX, 10_000]) {
      const history = openPhotoHistory(path.join(dir, `h-${n}.sqlite`), { maxPerMachine: n, durability: 'normal' });
      const vector = () => Float32Array.from({ length: DIM }, () => Math.random() - 0.5);
      for (let i = 0; i < n; i++) history.record({ sha256: `${i}`.padStart(64, '0'), phash: '0123456789abcdef', embedding: vector(), machineId: 'm', takenAt: new Date(i * 1000).toISOString() });
      const query = vector();
      const total: number[] = [];
      const read: number[] = [];
      let growth = NaN;
      for (let run = 0; run < 5; run++) {
        globalThis.gc?.();
        const rss = process.memoryUsage().rss;
        const t0 = performance.now();
        const earlier = history.recent('m');
        read.push(performance.now() - t0);
        compare({
          recognized: { machineType: 'excavator', confidence: 0.9, embedding: query },
          candidates: earlier.map((h) => ({ sha256: h.sha256, embedding: h.embedding, source: 'history' as const, takenAt: h.takenAt })),
          phash: 'fedcba9876543210',
          knownHashes: earlier.flatMap((h) => (h.phash ? [{ sha256: h.sha256, phash: h.phash }] : [])),
        });
        total.push(performance.now() - t0);
        if (run === 0) growth = (process.memoryUsage().rss - rss) / 1e6;
      }
      history.close();
      rows.push([n, fmt(median(total), 1), fmt(median(read), 1), fmt(growth, 0)]);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(table(rows));
  console.log(`history rows: earlier photos of one machine (comparison.historyPerMachine; 200 by default, at most ${HISTORY_PER_MACHINE_MAX}); the main thread is busy for the whole comparison.`);
}
