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
 *   so their sum is bounded too. At the cap the OLDEST of them is cut to make room, not the
 *   newcomer: a real client sends its CONNECT within milliseconds of connecting, while sockets
 *   that connect and never speak would otherwise hold every slot until the broker's CONNECT
 *   timeout (aedes: 30 s) and, re-opened as they time out (2 a second, well within the rate
 *   below), lock every service process and gateway out for good (test/security.preauth.test.ts);
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
  /** Connections still sending their CONNECT, oldest first (a Map keeps insertion order), with how to cut each. */
  readonly #pending = new Map<Duplex, { address: string | undefined; cut: () => void }>();

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
    // At the cap, the oldest still-silent connection makes room (see the class comment).
    const oldest = this.#pending.size >= this.limits.maxPendingConnects ? this.#pending.values().next().value : undefined;
    if (oldest) {
      this.stats.refusedPending++;
      this.deps.onRefused('pending', oldest.address);
      oldest.cut(); // settles it: leaves #pending
    }
    let pending = true;
    const settle = () => {
      if (!pending) return;
      pending = false;
      this.#pending.delete(conn);
      this.stats.pendingConnects = this.#pending.size;
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
    this.#pending.set(conn, {
      address,
      cut: () => {
        settle();
        conn.destroy();
        guarded.destroy();
      },
    });
    this.stats.pendingConnects = this.#pending.size;
    if (address !== undefined) this.#addressOf.set(guarded, address);
    return guarded;
  }

  /** The remote address of a stream this gate admitted (for per-address login limits at authentication). */
  addressOf(stream: object): string | undefined {
    return this.#addressOf.get(stream);
  }
}
