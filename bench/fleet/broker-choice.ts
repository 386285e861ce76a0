import { z } from 'zod';
import { embeddedBroker, type FleetBroker } from './broker.js';
import { rabbitmqBroker } from './broker-rabbitmq.js';

/**
 * TU_FLEET_BROKER: which broker the fleet bench runs against: `rabbitmq` (default; a cluster of
 * TU_FLEET_BROKER_NODES nodes with an auth cache of TU_FLEET_AUTH_CACHE_MS, bench/fleet/broker-rabbitmq.ts) or `embedded` (each relay
 * instance its own broker, bench/fleet/broker.ts).
 */
export function fleetBrokerFromEnv(env: NodeJS.ProcessEnv = process.env): FleetBroker {
  const e = z
    .object({ TU_FLEET_BROKER: z.enum(['rabbitmq', 'embedded']).default('rabbitmq'), TU_FLEET_BROKER_NODES: z.coerce.number().int().min(1).max(7).default(3),
      // The broker's auth cache TTL (the relay's default ingress.rabbitmq.cacheTtlMs unless set).
      TU_FLEET_AUTH_CACHE_MS: z.coerce.number().int().min(0).max(3_600_000).default(10_000),
    })
    .parse(env);
  return e.TU_FLEET_BROKER === 'embedded' ? embeddedBroker() : rabbitmqBroker(e.TU_FLEET_BROKER_NODES, e.TU_FLEET_AUTH_CACHE_MS);
}
