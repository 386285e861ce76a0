/**
 * Recently seen event ids (bounded, oldest forgotten first), each with the promise of its
 * storage write: a duplicate is acknowledged when the original is stored, not before.
 */
export class RecentIds {
  #ids = new Map<string, Promise<unknown>>();
  constructor(private readonly max: number) {}

  get(id: string): Promise<unknown> | undefined {
    return this.#ids.get(id);
  }

  add(id: string, written: Promise<unknown>): void {
    this.#ids.set(id, written);
    if (this.#ids.size > this.max) {
      const oldest = this.#ids.keys().next().value;
      if (oldest !== undefined) this.#ids.delete(oldest);
    }
  }

  get size(): number {
    return this.#ids.size;
  }
}
