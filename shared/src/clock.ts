/** Injectable time source so timeouts and backoff are tested without sleeping. */
export interface Clock {
  /** Wall-clock milliseconds since the epoch: what a time stamp says. It can jump (NTP, a gateway booting with its clock off). */
  now(): number;
  /**
   * Milliseconds on a clock that only moves forward, at the pace of real time, whatever is done
   * to the wall clock; its zero means nothing. For durations that must survive the wall clock
   * being set (agent/src/uplink/outbox.ts ages its events on it). Timers run on this clock.
   */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export interface TimerHandle {
  readonly id: number;
}

export const systemClock: Clock = (() => {
  const timers = new Map<number, NodeJS.Timeout>();
  let next = 1;
  return {
    now: () => Date.now(),
    monotonic: () => performance.now(),
    setTimeout(fn, ms) {
      const id = next++;
      const t = setTimeout(() => {
        timers.delete(id);
        fn();
      }, ms);
      t.unref?.();
      timers.set(id, t);
      return { id };
    },
    clearTimeout(handle) {
      const t = timers.get(handle.id);
      if (t) {
        clearTimeout(t);
        timers.delete(handle.id);
      }
    },
  };
})();

/**
 * A manual clock for tests: time moves only when `advance` is called (both clocks, firing due
 * timers) or `setWall` is called (the wall clock alone, as NTP setting a gateway's clock does).
 */
export class ManualClock implements Clock {
  #mono = 0;
  /** now() − monotonic(). */
  #wallOffset: number;
  #next = 1;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#wallOffset = start;
  }

  now(): number {
    return this.#mono + this.#wallOffset;
  }

  monotonic(): number {
    return this.#mono;
  }

  /** Sets the wall clock to `at` (ms since the epoch) without moving time: no timer fires. */
  setWall(at: number): void {
    this.#wallOffset = at - this.#mono;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#mono + Math.max(0, ms), fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle.id);
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Moves time forward, firing due timers in order (timers set while firing also run if due). */
  advance(ms: number): void {
    const target = this.#mono + ms;
    for (;;) {
      let dueId: number | undefined;
      let dueAt = Infinity;
      for (const [id, t] of this.#timers) {
        if (t.at <= target && t.at < dueAt) {
          dueAt = t.at;
          dueId = id;
        }
      }
      if (dueId === undefined) break;
      const timer = this.#timers.get(dueId)!;
      this.#timers.delete(dueId);
      this.#mono = Math.max(this.#mono, timer.at);
      timer.fn();
    }
    this.#mono = target;
  }
}
