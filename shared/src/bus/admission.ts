import type { Duplex } from 'node:stream';
import { guardMqttStream, type PacketLimits, type PacketViolation } from './packet-guard.js';
import { TokenBuckets } from './token-buckets.js';

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

export class MqttAdmission {
  readonly stats: AdmissionStats = { refusedOversize: 0, refusedRate: 0, refusedPending: 0, pendingConnects: 0 };
  readonly #perAddress: TokenBuckets;
  readonly #addressOf = new WeakMap<object, string>();

  constructor(
    readonly limits: AdmissionLimits,
    /** onRefused's `stream`: the admitted stream a packet violation cut (the one admit() returned); undefined for a connection refused at once. */
    private readonly deps: { now: () => number; onRefused: (why: PacketViolation | 'rate' | 'pending', address: string | undefined, stream?: Duplex) => void },
  ) {
    this.#perAddress = new TokenBuckets({ burst: limits.connectBurstPerAddress, perSecond: limits.connectsPerSecondPerAddress }, deps.now);
  }

  /** The stream to hand to the broker, or undefined when the connection was refused (and destroyed). */
  admit(conn: Duplex, address: string | undefined): Duplex | undefined {
    if (address !== undefined && !this.#perAddress.take(address)) {
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
    const guarded = guardMqttStream(
      conn,
      this.limits,
      (why) => {
        this.stats.refusedOversize++;
        this.deps.onRefused(why, address, guarded);
      },
      settle,
    );
    if (address !== undefined) this.#addressOf.set(guarded, address);
    return guarded;
  }

  /** The remote address of a stream this gate admitted (for per-address login limits at authentication). */
  addressOf(stream: object): string | undefined {
    return this.#addressOf.get(stream);
  }
}
