import type { z } from 'zod';

/**
 * The default image-quality and comparison thresholds: what the metadata and comparison services
 * use where metadata.thresholds / comparison.thresholds leave a value out
 * (agent/src/services/metadata/quality.ts and comparison/verdict.ts re-export them; how they were
 * calibrated is told there and in agent/src/services/metadata/README.md). They live with the
 * config because the config refuses a pair of bounds out of order (schema.ts), and a bound given
 * alone meets the default of the other: `minBrightness: 0.9` on its own is above the default
 * maxBrightness 0.85.
 */
export const QUALITY_DEFAULTS = Object.freeze({
  minSharpness: 150,
  minBrightness: 0.2,
  maxBrightness: 0.85,
  minMegapixels: 0.1,
  minSide: 300,
  minContrast: 0.08,
});

export const COMPARISON_DEFAULTS = Object.freeze({
  similarityMatch: 0.73,
  similarityMismatch: 0.6,
  duplicateHamming: 10,
  minTypeConfidence: 0.6,
});

/** A lower and an upper bound of one measure, and what happens when the lower one is not below (or at most) the upper. */
interface BoundPair<K extends string> {
  low: K;
  high: K;
  /** true: the two may be equal. */
  equalOk: boolean;
  why: string;
}

/**
 * A superRefine that refuses `low` above `high` (or equal, unless equalOk), each the configured
 * value or else its default, naming both fields by their full path (`at`, the object's path in
 * the config) on the one that was configured.
 */
export function boundsInOrder<K extends string>(at: string, defaults: Readonly<Record<K, number>>, pairs: readonly BoundPair<K>[]) {
  return (t: Partial<Record<K, number | undefined>>, ctx: z.RefinementCtx): void => {
    for (const { low, high, equalOk, why } of pairs) {
      const lo = t[low] ?? defaults[low];
      const hi = t[high] ?? defaults[high];
      if (equalOk ? lo <= hi : lo < hi) continue;
      const shown = (k: K, v: number) => `${at}.${k} (${v}${t[k] === undefined ? ', the default' : ''})`;
      ctx.addIssue({
        code: 'custom',
        path: [t[low] !== undefined ? low : high],
        message: `${shown(low, lo)} must be ${equalOk ? 'at most' : 'below'} ${shown(high, hi)}: ${why}`,
      });
    }
  };
}
