import type { Duplex } from 'node:stream';
import { TokenBuckets, type BucketRate } from '@tu/shared';

export interface ConnectPacerLimits extends BucketRate {
  /** Connections waiting at most; a newcomer beyond it is refused (closed). */
  maxWaiting: number;
  /** A connection that waited this long is closed: its gateway retries with its backoff. */
  maxWaitMs: number;
}

export interface ConnectPacerStats {
  /** Connections waiting for their turn now. */
  waiting: number;
  /** Connections that had to wait, in all. */
  paced: number;
  /** Closed without their turn: the queue was full, or they waited maxWaitMs. */
  refusedFull: number;
  expired: number;
}

interface Waiting {
  conn: Duplex;
  since: number;
  onError: (err: Error) => void;
}

/**
 * Hands new gateway connections to the broker at most `perSecond` a second (after a burst),
 * in arrival order, for all addresses together.
 *
 * Why: when a relay instance dies, its gateways all reconnect to the others within the agent's
 * first backoff (half a second), and each connection costs a survivor 0.6–0.8 ms of CPU
 * (CONNECT, login, CONNACK, the status publish, presence; `npm run bench -- logins`). Taken as
 * they come, 1,700 of them hold the event loop, and every other gateway's events, for about a second.
 * Paced, the connected gateways' events keep their turn and the newcomers wait a little longer
 * for their CONNACK.
 *
 * While a connection waits, the packet guard in front of it (shared/src/bus/packet-guard.ts)
 * has already read its CONNECT (at most maxConnectBytes) and holds it until the broker reads
 * the stream. So the queue is bounded on its own (`maxWaiting`, refused beyond), and nobody
 * waits longer than `maxWaitMs` (below the agent's connect timeout): a flood of connections from
 * many addresses costs a refusal each, not memory without end. An error on a waiting connection
 * (a reset) is handled here: nothing else listens to it yet.
 */
export class ConnectPacer {
  readonly #bucket: TokenBuckets;
  /** Arrival order; an entry whose connection closed meanwhile is skipped when reached. */
  #queue: Waiting[] = [];
  #head = 0;
  /** The connections waiting now (not yet started, not closed). */
  readonly #waiting = new Map<Duplex, Waiting>();
  readonly #counts = { paced: 0, refusedFull: 0, expired: 0 };
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly limits: ConnectPacerLimits,
    private readonly deps: { now: () => number; start: (conn: Duplex) => void; onRefused?: (why: 'full' | 'expired') => void },
  ) {
    this.#bucket = new TokenBuckets(limits, deps.now, 1);
  }

  get stats(): ConnectPacerStats {
    return { waiting: this.#waiting.size, ...this.#counts };
  }

  /** Starts the connection now if its turn has come (nobody waiting and a token left), else queues it. */
  offer(conn: Duplex): void {
    if (this.#closed) return void conn.destroy();
    if (conn.destroyed) return;
    if (this.#waiting.size === 0 && this.#bucket.take('')) return this.deps.start(conn);
    if (this.#waiting.size >= this.limits.maxWaiting) {
      this.#counts.refusedFull++;
      this.deps.onRefused?.('full');
      return void conn.destroy();
    }
    const entry: Waiting = { conn, since: this.deps.now(), onError: () => this.#waiting.delete(conn) };
    conn.on('error', entry.onError);
    conn.once('close', () => this.#waiting.delete(conn));
    this.#queue.push(entry);
    this.#waiting.set(conn, entry);
    this.#counts.paced++;
    this.#schedule();
  }

  /** Drops the waiting connections (the ingress is closing). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const conn of this.#waiting.keys()) conn.destroy();
    this.#waiting.clear();
    this.#queue = [];
    this.#head = 0;
  }

  #drain(): void {
    const now = this.deps.now();
    while (this.#head < this.#queue.length) {
      const entry = this.#queue[this.#head]!;
      const live = this.#waiting.get(entry.conn) === entry;
      if (live && now - entry.since >= this.limits.maxWaitMs) {
        this.#head++;
        this.#waiting.delete(entry.conn);
        this.#counts.expired++;
        this.deps.onRefused?.('expired');
        entry.conn.destroy();
        continue;
      }
      if (live && !this.#bucket.take('')) break;
      this.#head++;
      if (!live) continue;
      this.#waiting.delete(entry.conn);
      // From here the broker listens to the stream's errors.
      entry.conn.off('error', entry.onError);
      this.deps.start(entry.conn);
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
      Math.max(1, Math.ceil((missing / this.limits.perSecond) * 1000)),
    );
  }
}
