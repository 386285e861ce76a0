export interface ReconnectPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  jitter: number;
}

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential from initialDelayMs,
 * capped at maxDelayMs, then +/- jitter (a fraction) so a fleet of gateways coming back
 * after a relay outage does not reconnect in lockstep. `random` in [0, 1).
 */
export function reconnectDelay(attempt: number, p: ReconnectPolicy, random: () => number): number {
  const base = Math.min(p.maxDelayMs, p.initialDelayMs * 2 ** Math.min(attempt, 40));
  const spread = base * p.jitter * (random() * 2 - 1);
  return Math.max(1, Math.round(base + spread));
}
