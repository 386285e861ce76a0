import type { EventKey } from '../storage/types.js';

/**
 * Recently seen events (bounded, oldest forgotten first), each with the promise of its storage
 * write: a duplicate is acknowledged when the original is stored, not before. An event is known
 * by its gateway and its id (migration 008): ids are each gateway's own choice, so another
 * gateway's event of the same id is a different event, never a duplicate.
 */
export class RecentIds {
  #ids = new Map<string, Promise<unknown>>();
  constructor(private readonly max: number) {}

  get(e: EventKey): Promise<unknown> | undefined {
    return this.#ids.get(keyOf(e));
  }

  add(e: EventKey, written: Promise<unknown>): void {
    this.#ids.set(keyOf(e), written);
    if (this.#ids.size > this.max) {
      const oldest = this.#ids.keys().next().value;
      if (oldest !== undefined) this.#ids.delete(oldest);
    }
  }

  get size(): number {
    return this.#ids.size;
  }
}

/** No gateway id or event id holds a NUL (shared/src/bus/storable-text.ts), so the pair is one string unambiguously. */
const keyOf = (e: EventKey): string => `${e.gatewayId}\u0000${e.id}`;
