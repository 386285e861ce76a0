import type { Duplex } from 'node:stream';
import { guardMqttStream, type PacketLimits, type PacketViolation } from './packet-guard.js';

/**
 * Who may open an MQTT connection to one of our brokers, and how much they may send before
 * they have proven who they are (the agent's bus in agent/src/broker/broker.ts and the relay's
 * gateway ingress in relay/src/ingress/embedded.ts). Three limits, all applied before the
 * broker parses anything:
 * - packet size: a fixed header announcing more than the limit cuts the connection
 *   (packet-guard.ts), so a 250 MB CONNECT costs nothing;
 * - connections still sending their CONNECT, in total: each holds at most maxConnectBytes,
 *   so their sum is bounded too;
 * - new connections per remote address (a token bucket), so one host cannot churn sockets.
 */
export interface AdmissionLimits extends PacketLimits {
  /** Connections accepted at once that have not yet sent a whole CONNECT. */
  maxPendingConnects: number;
  /** Per remote address: a burst of this many connections ... */
  connectBurstPerAddress: number;
  /** ... refilled at this many per second. */
  connectsPerSecondPerAddress: number;
}

export interface AdmissionStats {
  refusedOversize: number;
  refusedRate: number;
  refusedPending: number;
  pendingConnects: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Addresses remembered at most; full buckets are dropped first when it overflows. */
const MAX_TRACKED_ADDRESSES = 10_000;

export class MqttAdmission {
  readonly stats: AdmissionStats = { refusedOversize: 0, refusedRate: 0, refusedPending: 0, pendingConnects: 0 };
  readonly #buckets = new Map<string, Bucket>();

  constructor(
    readonly limits: AdmissionLimits,
    private readonly deps: { now: () => number; onRefused: (why: PacketViolation | 'rate' | 'pending', address: string | undefined) => void },
  ) {}

  /** The stream to hand to the broker, or undefined when the connection was refused (and destroyed). */
  admit(conn: Duplex, address: string | undefined): Duplex | undefined {
    if (address !== undefined && !this.#take(address)) {
      this.stats.refusedRate++;
      this.deps.onRefused('rate', address);
      conn.destroy();
      return undefined;
    }
    if (this.stats.pendingConnects >= this.limits.maxPendingConnects) {
      this.stats.refusedPending++;
      this.deps.onRefused('pending', address);
      conn.destroy();
      return undefined;
    }
    this.stats.pendingConnects++;
    let pending = true;
    const settle = () => {
      if (!pending) return;
      pending = false;
      this.stats.pendingConnects--;
    };
    conn.once('close', settle);
    return guardMqttStream(
      conn,
      this.limits,
      (why) => {
        this.stats.refusedOversize++;
        this.deps.onRefused(why, address);
      },
      settle,
    );
  }

  #take(address: string): boolean {
    const now = this.deps.now();
    const { connectBurstPerAddress: burst, connectsPerSecondPerAddress: rate } = this.limits;
    let b = this.#buckets.get(address);
    if (!b) {
      if (this.#buckets.size >= MAX_TRACKED_ADDRESSES) this.#forgetFull(now);
      b = { tokens: burst, at: now };
      this.#buckets.set(address, b);
    }
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  #forgetFull(now: number): void {
    const { connectBurstPerAddress: burst, connectsPerSecondPerAddress: rate } = this.limits;
    for (const [a, b] of this.#buckets) if (b.tokens + ((now - b.at) / 1000) * rate >= burst) this.#buckets.delete(a);
    // Still full of busy addresses: forget the oldest rather than grow without bound.
    while (this.#buckets.size >= MAX_TRACKED_ADDRESSES) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}
