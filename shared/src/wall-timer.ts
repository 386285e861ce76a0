/**
 * setTimeout's longest delay (about 24.8 days): Node fires a longer one after 1 ms instead
 * (TimeoutOverflowWarning). Tokens live longer (relay dashboard tokens up to 90 days, agent
 * technician tokens up to auth.maxTokenTtlS, 31 days at most).
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `fire` once the wall clock reaches `atMs` (ms since the epoch), at once when it already
 * has; a far instant is waited for in steps. Returns a function that cancels it. Used to close a
 * connection when the token that opened it expires (relay/src/graphql/ws-guard.ts,
 * agent/src/http/routes/events.ts): the wall clock, because a token's `exp` is wall time and its
 * verifier (jose) judges it on that clock too.
 */
export function atWallTime(atMs: number, fire: () => void, now: () => number = Date.now): () => void {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = (): void => {
    if (cancelled) return;
    const left = atMs - now();
    if (left <= 0) {
      timer = undefined;
      fire();
      return;
    }
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return () => {
    cancelled = true;
    if (timer) clearTimeout(timer);
  };
}
