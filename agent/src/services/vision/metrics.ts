/** Evaluation metrics: confusion matrix, per-class precision/recall, text tables. */

export interface ConfusionMatrix {
  /** Row = true label, column = predicted label. */
  labels: string[];
  counts: number[][];
}

export function confusionMatrix(pairs: readonly { truth: string; predicted: string }[], labels: readonly string[]): ConfusionMatrix {
  const all = [...labels];
  for (const p of pairs) for (const l of [p.truth, p.predicted]) if (!all.includes(l)) all.push(l);
  const counts = all.map(() => all.map(() => 0));
  for (const p of pairs) {
    const row = counts[all.indexOf(p.truth)];
    const j = all.indexOf(p.predicted);
    if (row) row[j] = (row[j] ?? 0) + 1;
  }
  return { labels: all, counts };
}

export interface ClassStats {
  label: string;
  support: number;
  predicted: number;
  truePositives: number;
  precision: number | null;
  recall: number | null;
}

export function perClassStats(m: ConfusionMatrix): ClassStats[] {
  return m.labels.map((label, i) => {
    const row = m.counts[i] ?? [];
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = m.counts.reduce((a, r) => a + (r[i] ?? 0), 0);
    const tp = row[i] ?? 0;
    return {
      label,
      support,
      predicted,
      truePositives: tp,
      precision: predicted ? tp / predicted : null,
      recall: support ? tp / support : null,
    };
  });
}

const pct = (x: number | null): string => (x === null ? '   -' : `${(x * 100).toFixed(0).padStart(3)}%`);

export function formatStatsTable(stats: readonly ClassStats[]): string {
  const w = Math.max(8, ...stats.map((s) => s.label.length));
  const lines = [`| ${'type'.padEnd(w)} | support | predicted | precision | recall |`, `|${'-'.repeat(w + 2)}|---------|-----------|-----------|--------|`];
  for (const s of stats) {
    lines.push(`| ${s.label.padEnd(w)} | ${String(s.support).padStart(7)} | ${String(s.predicted).padStart(9)} | ${pct(s.precision).padStart(9)} | ${pct(s.recall).padStart(6)} |`);
  }
  return lines.join('\n');
}

/** Compact matrix with abbreviated column headers (first 4 chars). */
export function formatConfusion(m: ConfusionMatrix): string {
  const w = Math.max(...m.labels.map((l) => l.length));
  const abbr = m.labels.map((l) => l.slice(0, 4).padStart(4));
  const lines = [`${'true \\ predicted'.padEnd(w)} ${abbr.join(' ')}`];
  m.labels.forEach((l, i) => {
    const row = (m.counts[i] ?? []).map((c) => (c ? String(c) : '.').padStart(4));
    lines.push(`${l.padEnd(w)} ${row.join(' ')}`);
  });
  return lines.join('\n');
}
