import { z } from 'zod';
import { embeddedBroker, type FleetBroker } from './broker.js';

/** TU_FLEET_BROKER: which broker the fleet bench runs against (bench/fleet/broker.ts). */
export async function fleetBrokerFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<FleetBroker> {
  const kind = z.enum(['embedded']).default('embedded').parse(env.TU_FLEET_BROKER);
  switch (kind) {
    case 'embedded':
      return embeddedBroker();
  }
}
