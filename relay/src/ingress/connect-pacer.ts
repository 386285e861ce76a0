import type { Duplex } from 'node:stream';
import { TokenBuckets, type BucketRate } from '@tu/shared';

export interface ConnectPacerStats {
  /** Connections waiting for their turn now. */
  waiting: number;
  /** Connections that had to wait, in all. */
  paced: number;
}

/**
 * Hands new gateway connections to the broker at most `perSecond` a second (after a burst),
 * in arrival order, for all addresses together.
 *
 * Why: when a relay instance dies, its gateways all reconnect to the others within the agent's
 * first backoff (half a second), and each connection costs a survivor 0.5–0.7 ms of CPU
 * (CONNECT, login, CONNACK, the status publish, presence; `npm run bench -- logins`). Taken as
 * they come, 1,700 of them hold the event loop, and every other gateway's events, for about a second. Paced, the
 * connected gateways' events keep their turn in the event loop and the newcomers wait a little
 * longer for their CONNACK. A waiting connection is not read: what it sent stays in the socket,
 * and it still counts as a connection before authentication (admission's maxPendingConnects
 * bounds how many may wait). One that closes while waiting is dropped from the queue.
 */
export class ConnectPacer {
  readonly #bucket: TokenBuckets;
  /** Arrival order; a connection that closed while waiting is skipped when reached. */
  #queue: Duplex[] = [];
  #head = 0;
  /** The connections waiting now (not yet started, not closed). */
  readonly #waiting = new Set<Duplex>();
  #paced = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly rate: BucketRate,
    private readonly deps: { now: () => number; start: (conn: Duplex) => void },
  ) {
    this.#bucket = new TokenBuckets(rate, deps.now, 1);
  }

  get stats(): ConnectPacerStats {
    return { waiting: this.#waiting.size, paced: this.#paced };
  }

  /** Starts the connection now if its turn has come (nobody waiting and a token left), else queues it. */
  offer(conn: Duplex): void {
    if (this.#closed) return void conn.destroy();
    if (this.#waiting.size === 0 && this.#bucket.take('')) return this.deps.start(conn);
    this.#queue.push(conn);
    this.#waiting.add(conn);
    this.#paced++;
    conn.once('close', () => this.#waiting.delete(conn));
    this.#schedule();
  }

  /** Drops the waiting connections (the ingress is closing). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const conn of this.#waiting) conn.destroy();
    this.#waiting.clear();
    this.#queue = [];
    this.#head = 0;
  }

  #drain(): void {
    while (this.#head < this.#queue.length) {
      const conn = this.#queue[this.#head]!;
      if (this.#waiting.has(conn) && !this.#bucket.take('')) break;
      this.#head++;
      if (this.#waiting.delete(conn)) this.deps.start(conn);
    }
    // Compacted once drained or once the consumed head is most of it, so a long storm stays O(n).
    if (this.#head === this.#queue.length || this.#head > 1024) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    this.#schedule();
  }

  /** One timer, for when the next token is due, while anyone waits. */
  #schedule(): void {
    if (this.#timer || this.#closed || this.#waiting.size === 0) return;
    const missing = Math.max(0, 1 - this.#bucket.available(''));
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#drain();
      },
      Math.max(1, Math.ceil((missing / this.rate.perSecond) * 1000)),
    );
  }
}
