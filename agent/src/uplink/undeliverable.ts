import type { LimitSource } from './event-limit.js';

/** One event set aside in the outbox (table `undeliverable`, outbox-db.ts): what is known of it without reading its payload. */
export interface UndeliverableEntry {
  /** Its seq in the outbox when it was set aside (the row keeps it). */
  seq: number;
  id: string;
  type: string;
  bytes: number;
  reason: string;
  limitBytes: number;
  limitBy: LimitSource;
  /** Wall-clock time it was set aside (a record, like the row's enqueued_at). */
  at: number;
}

/**
 * In-memory index of the events set aside (outbox.ts `setAside`), oldest first: their number and
 * bytes count against the outbox's bounds (they are on disk like the queue), the oldest is the first
 * to go when room is needed, and health names the latest without touching the disk. About 150
 * bytes per entry; there are at most uplink.outbox.maxEvents of them.
 */
export class UndeliverableIndex {
  readonly #entries = new Map<number, UndeliverableEntry>();
  #bytes = 0;
  #latest: UndeliverableEntry | undefined;

  get size(): number {
    return this.#entries.size;
  }
  get bytes(): number {
    return this.#bytes;
  }
  /** The last one set aside (the reason health shows). */
  get latest(): UndeliverableEntry | undefined {
    // Found again only when asked after the latest left (not on every removal: requeue removes many).
    if (!this.#latest && this.#entries.size) for (const e of this.#entries.values()) if (!this.#latest || e.at >= this.#latest.at) this.#latest = e;
    return this.#latest;
  }

  add(e: UndeliverableEntry): void {
    this.#entries.set(e.seq, e);
    this.#bytes += e.bytes;
    if (!this.latest || e.at >= this.latest.at) this.#latest = e;
  }

  remove(seq: number): UndeliverableEntry | undefined {
    const e = this.#entries.get(seq);
    if (!e) return undefined;
    this.#entries.delete(seq);
    this.#bytes -= e.bytes;
    if (this.#latest === e) this.#latest = undefined;
    return e;
  }

  /** The one set aside first. */
  oldest(): UndeliverableEntry | undefined {
    return this.#entries.values().next().value;
  }

  entries(): UndeliverableEntry[] {
    return [...this.#entries.values()];
  }
}

/** The health sentence (agent/src/http/routes/health.ts `reasons`): how many, the latest and why, and what happens to them. */
export function describeUndeliverable(u: { events: number; latest: { id: string; type: string; reason: string } | null }): string {
  const what = u.events === 1 ? '1 event for the cloud relay is' : `${u.events} events for the cloud relay are`;
  const latest = u.latest ? ` ${u.events === 1 ? 'It' : 'The latest'}, ${u.latest.type} ${u.latest.id}, is ${u.latest.reason}.` : '';
  return `${what} set aside on the gateway, not sent, because the relay would refuse them (UPLINK_EVENT_TOO_LARGE).${latest} They are kept in the outbox and sent by themselves once the limit allows them; the events behind them are delivered meanwhile.`;
}
