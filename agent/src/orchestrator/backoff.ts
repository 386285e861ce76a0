export interface RetryPolicy {
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
  jitter: number;
}

/**
 * Delay before attempt `next` (2 = first retry): exponential, capped, with +/- jitter
 * so that many analyses failing together do not retry in lockstep.
 */
export function retryDelay(policy: RetryPolicy, next: number, random: () => number = Math.random): number {
  const exp = policy.initialDelayMs * policy.multiplier ** Math.max(0, next - 2);
  const capped = Math.min(policy.maxDelayMs, exp);
  const spread = capped * policy.jitter;
  return Math.max(0, Math.round(capped - spread + random() * 2 * spread));
}
