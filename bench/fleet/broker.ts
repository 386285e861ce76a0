import type { RelayInstance } from './relays.js';

/**
 * Where the fleet's MQTT connections end, and how the relay instances reach their events: the
 * one part of the fleet bench that depends on the broker. `embedded` (relay/src/ingress/embedded.ts):
 * every relay instance is itself the broker of the gateways connected to it, as behind a TCP
 * load balancer; a gateway whose instance dies reconnects to the next one, and "killing a broker
 * node" is killing a relay instance (there is no other broker).
 */
export interface FleetBroker {
  readonly kind: string;
  /** Starts the broker once the relay instances' ports are known (before they start). */
  prepare(relays: RelayInstance[]): Promise<void>;
  /** Relay configuration (config-file fields) of instance `i` for this broker. */
  relayConfig(i: number): Record<string, unknown>;
  /** Environment of instance `i` (TU_RELAY_*). */
  relayEnv(i: number): Record<string, string>;
  /** URLs the gateways connect to, once the relays are up. */
  gatewayUrls(relays: RelayInstance[]): string[];
  /** Pids of the broker's own processes (CPU accounting); empty when the relays are the broker. */
  pids(): number[];
  /** Requests the broker has made to the relays so far (its authentication and authorisation questions), when it makes any. */
  authRequests?(): number;
  /** Kills one broker node hard; undefined when the broker has no nodes of its own. */
  killNode?(): Promise<string>;
  restartNode?(): Promise<void>;
  stop(): Promise<void>;
}

export function embeddedBroker(): FleetBroker {
  return {
    kind: 'embedded',
    prepare: async () => undefined,
    relayConfig: () => ({
      ingress: {
        mode: 'embedded',
        host: '127.0.0.1',
        // Every simulated gateway comes from 127.0.0.1: the per-address limits that protect a
        // public listener (relay/src/config.ts ingress.limits) would make the fleet take minutes
        // to connect (50 connects/s; and a login in flight counts as a failure until it succeeds,
        // shared/src/bus/login-throttle.ts, so only 10 at once), so they are lifted for this
        // loopback-only bench.
        limits: { connectBurstPerAddress: 1_000_000, connectsPerSecondPerAddress: 1_000_000, maxPendingConnects: 20_000, failedLoginBurst: 1_000_000, failedLoginsPerSecond: 1_000_000 },
      },
    }),
    relayEnv: () => ({ TU_RELAY_INGRESS_MODE: 'embedded' }),
    gatewayUrls: (relays) => relays.map((r) => r.mqttUrl),
    pids: () => [],
    stop: async () => undefined,
  };
}
