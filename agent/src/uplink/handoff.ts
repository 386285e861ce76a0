import type { Clock, EventType, TimerHandle } from '@tu/shared';

/** The events that end an analysis: the relay shows it `running` until one of them arrives. */
export const TERMINAL_EVENT_TYPES: ReadonlySet<EventType> = new Set<EventType>(['analysis.completed', 'analysis.failed']);

export interface HandoffOptions {
  clock: Clock;
  /** How long a waiter waits for the event to reach the uplink's observer before giving up. */
  timeoutMs: number;
  /** Outcomes seen before anyone asked (bounded, oldest forgotten first). */
  maxUnclaimed: number;
}

/**
 * Meeting point between the orchestrator and the uplink for terminal events
 * (agent/src/orchestrator/orchestrator.ts publishTerminal). The orchestrator keeps an
 * analysis open in its state store, so a restart re-publishes its terminal event with
 * the same id, until the uplink says that event is on disk in the outbox; only then
 * may the record close. Without this the record could close first and a kill -9 before
 * the outbox commit lost the event for the relay for good.
 *
 * The two sides arrive in either order (the bus delivers to the uplink's observer and
 * acknowledges the orchestrator's publish independently), so whichever comes first
 * waits for the other. Nothing here is durable and everything is bounded: unclaimed
 * outcomes are capped, waiters time out on the injected clock (answer `false`: the
 * record stays open and is re-published at the next start).
 */
export class TerminalHandoff {
  readonly #o: HandoffOptions;
  /** Event id → resolves true once committed to the outbox, false if it was not queued. */
  readonly #unclaimed = new Map<string, Promise<boolean>>();
  readonly #waiting = new Map<string, { resolve: (onDisk: boolean) => void; timer: TimerHandle }[]>();
  #closed = false;

  constructor(opts: HandoffOptions) {
    this.#o = opts;
  }

  /** The uplink saw terminal event `id`; `onDisk` resolves true once the outbox committed it, false if it did not take it. */
  record(id: string, onDisk: Promise<boolean>): void {
    if (this.#closed) return;
    const waiters = this.#waiting.get(id);
    if (waiters) {
      this.#waiting.delete(id);
      for (const w of waiters) {
        this.#o.clock.clearTimeout(w.timer);
        void onDisk.then(w.resolve);
      }
      return;
    }
    this.#unclaimed.delete(id);
    this.#unclaimed.set(id, onDisk);
    while (this.#unclaimed.size > this.#o.maxUnclaimed) this.#unclaimed.delete(this.#unclaimed.keys().next().value!);
  }

  /** Resolves true once terminal event `id` is on disk in the outbox; false if the outbox refused it, failed, or it did not arrive in time. */
  onDisk(id: string): Promise<boolean> {
    const known = this.#unclaimed.get(id);
    if (known) {
      this.#unclaimed.delete(id);
      return known;
    }
    if (this.#closed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const waiter = {
        resolve,
        timer: this.#o.clock.setTimeout(() => {
          const list = this.#waiting.get(id)?.filter((w) => w !== waiter) ?? [];
          if (list.length) this.#waiting.set(id, list);
          else this.#waiting.delete(id);
          resolve(false);
        }, this.#o.timeoutMs),
      };
      this.#waiting.set(id, [...(this.#waiting.get(id) ?? []), waiter]);
    });
  }

  /** Outstanding waiters and unclaimed outcomes (both bounded). */
  get size(): { waiting: number; unclaimed: number } {
    return { waiting: this.#waiting.size, unclaimed: this.#unclaimed.size };
  }

  /** Stops: every waiter answers false (its record stays open and is re-published at the next start). */
  close(): void {
    this.#closed = true;
    for (const waiters of this.#waiting.values()) {
      for (const w of waiters) {
        this.#o.clock.clearTimeout(w.timer);
        w.resolve(false);
      }
    }
    this.#waiting.clear();
    this.#unclaimed.clear();
  }
}
