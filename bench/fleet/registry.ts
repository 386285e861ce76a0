import { randomBytes, scrypt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { verifySecret } from '@tu/relay';

/** One simulated gateway's own login (username = client id = gateway id, as relay/README.md requires). */
export interface FleetGateway {
  id: string;
  secret: string;
}

/**
 * The scrypt cost of the fleet's stored hashes. The relay reads N, r and p from each stored
 * hash (relay/src/registry/secrets.ts `verifySecret`), so hashes made with a lower N are
 * verified the same way, only faster: at the production N (16384, ~40 ms each) creating and
 * first-verifying 10,000 gateways would cost ~800 CPU-seconds on this 2-core machine before
 * any event flows. The bench prints what the production cost would add (fleetLoginCost).
 */
export const FLEET_SCRYPT_N = 1024;

const derive = (secret: string, salt: Buffer, n: number): Promise<Buffer> =>
  new Promise((resolve, reject) => scrypt(secret, salt, 32, { N: n, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))));

/** A hash in the relay's stored format `scrypt$N$r$p$salt$hash` (relay/src/registry/secrets.ts). */
async function fleetHash(secret: string): Promise<string> {
  const salt = randomBytes(16);
  return `scrypt$${FLEET_SCRYPT_N}$8$1$${salt.toString('base64url')}$${(await derive(secret, salt, FLEET_SCRYPT_N)).toString('base64url')}`;
}

export const gatewayId = (prefix: string, i: number): string => `${prefix}-${String(i).padStart(5, '0')}`;

/**
 * Writes the relay's registry file (relay/README.md, "Registry file"; imported by the first relay
 * instance at start, TU_RELAY_REGISTRY_FILE): one tenant, `n` gateways each with its own random
 * secret, stored as a hash. Returns the gateways with their clear secrets (the simulator's logins).
 */
export async function writeFleetRegistry(dir: string, tenant: string, prefix: string, n: number): Promise<{ file: string; gateways: FleetGateway[] }> {
  const gateways: FleetGateway[] = Array.from({ length: n }, (_, i) => ({ id: gatewayId(prefix, i), secret: randomBytes(24).toString('base64url') }));
  const entries = [];
  for (const g of gateways) entries.push({ id: g.id, tenant, name: `Fleet gateway ${g.id}`, secretHash: await fleetHash(g.secret) });
  // The relay's own check accepts the format (one rule: relay/src/registry/secrets.ts).
  if (!(await verifySecret(gateways[0]!.secret, entries[0]!.secretHash))) throw new Error('fleet registry: the relay does not accept the fleet hash format');
  const file = path.join(dir, 'fleet-registry.json');
  fs.writeFileSync(file, JSON.stringify({ tenants: [{ id: tenant, name: 'Fleet bench' }], gateways: entries }));
  return { file, gateways };
}

/** Milliseconds of one verification at the production cost (the relay's hashSecret N). */
export async function productionVerifyMs(): Promise<number> {
  const { hashSecret } = await import('@tu/relay');
  const h = await hashSecret('fleet-cost-probe-secret');
  const t0 = performance.now();
  await verifySecret('fleet-cost-probe-secret', h);
  return performance.now() - t0;
}
