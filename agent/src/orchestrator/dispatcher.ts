import type { CommandType, Presence } from '@tu/shared';

interface Instance {
  handles: readonly CommandType[];
  inflight: number;
  /** The release the instance runs, as its presence says (a service process may lag an update). */
  version: string;
}

/**
 * Point-to-point dispatch without `$share` (DESIGN §3): handler instances announce
 * themselves with retained presence (cleared by their last will); the orchestrator
 * sends each command to exactly one live instance, the least loaded one.
 */
export class Dispatcher {
  readonly #instances = new Map<string, Instance>();
  /**
   * Round-robin position per command type: with one shared counter, metadata picks made
   * beside recognition's (the plan runs them concurrently) would steer recognition's turn
   * and could send every tie to the same instance.
   */
  readonly #turn = new Map<CommandType, number>();

  /** Applies a presence change; returns whether an instance was added or removed. */
  update(instanceId: string, presence: Presence | null): 'added' | 'removed' | 'unchanged' {
    if (presence === null) return this.#instances.delete(instanceId) ? 'removed' : 'unchanged';
    const existing = this.#instances.get(instanceId);
    this.#instances.set(instanceId, { handles: presence.handles as CommandType[], inflight: existing?.inflight ?? 0, version: presence.version });
    return existing ? 'unchanged' : 'added';
  }

  has(instanceId: string): boolean {
    return this.#instances.has(instanceId);
  }

  /** The live instance with the fewest commands in flight (round-robin among equals). */
  pick(type: CommandType): string | undefined {
    let best: string | undefined;
    let bestLoad = Infinity;
    const candidates = [...this.#instances].filter(([, i]) => i.handles.includes(type));
    if (candidates.length === 0) return undefined;
    const turn = this.#turn.get(type) ?? 0;
    this.#turn.set(type, turn + 1);
    const start = turn % candidates.length;
    for (let k = 0; k < candidates.length; k++) {
      const [id, inst] = candidates[(start + k) % candidates.length]!;
      if (inst.inflight < bestLoad) {
        best = id;
        bestLoad = inst.inflight;
      }
    }
    return best;
  }

  acquire(instanceId: string): void {
    const i = this.#instances.get(instanceId);
    if (i) i.inflight++;
  }

  release(instanceId: string | undefined): void {
    const i = instanceId ? this.#instances.get(instanceId) : undefined;
    if (i && i.inflight > 0) i.inflight--;
  }

  snapshot(): { instanceId: string; handles: readonly CommandType[]; inflight: number; version: string }[] {
    return [...this.#instances].map(([instanceId, i]) => ({ instanceId, handles: i.handles, inflight: i.inflight, version: i.version }));
  }
}
