/**
 * The one retry policy of the project: the orchestrator's step retries, the uplink's
 * reconnects to the relay, the agent's SQLite group-commit writer's full-disk retries
 * (agent/src/sqlite/group-commit-writer.ts) and the relay's storage queue
 * (relay/src/ingest/storage-queue.ts) all compute their delays here.
 *
 * Numbering, the one rule for every caller: `retry` counts the retries made BEFORE the one
 * being scheduled, so the first retry is `retry = 0` and waits `initialDelayMs` (before
 * jitter), the second waits `initialDelayMs * multiplier`, and so on up to `maxDelayMs`.
 * `maxAttempts` counts every attempt including the first: with `maxAttempts: 3` there are at
 * most two retries (`mayRetry(policy, attemptsMade)` says whether another one is allowed).
 */

/** How delays grow. `multiplier` defaults to 2 (the uplink's reconnect config has none). */
export interface Backoff {
  initialDelayMs: number;
  maxDelayMs: number;
  /** Fraction of the capped delay randomised, +/- (0: exact delays). */
  jitter: number;
  multiplier?: number;
}

/** A backoff with a limit on attempts (firmware-config's `orchestrator.retry`). */
export interface RetryPolicy extends Backoff {
  /** Attempts in all, including the first. */
  maxAttempts: number;
}

/**
 * Delay (ms) before retry number `retry` (0 = the first retry): exponential, capped at
 * `maxDelayMs`, then +/- `jitter` so that many callers failing together (analyses after a
 * handler crash, a fleet of gateways after a relay outage) do not retry in lockstep.
 * `random` returns [0, 1); injected so tests pin the jitter.
 */
export function retryDelay(retry: number, policy: Backoff, random: () => number = Math.random): number {
  // The exponent is bounded so that huge retry counts stay finite (2 ** 40 ms is already years).
  const exp = policy.initialDelayMs * (policy.multiplier ?? 2) ** Math.min(Math.max(0, retry), 40);
  const capped = Math.min(policy.maxDelayMs, exp);
  const spread = capped * policy.jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(capped + spread));
}

/** Whether another attempt is allowed after `attemptsMade` attempts (first one included). */
export function mayRetry(policy: Pick<RetryPolicy, 'maxAttempts'>, attemptsMade: number): boolean {
  return attemptsMade < policy.maxAttempts;
}
