/**
 * Technician tokens signed by the relay, for gateways that verify them offline
 * (agent/src/http/auth/tokens.ts; format in shared/src/technician-token.ts):
 *   technicians key     prints the relay's Ed25519 public key (PEM), to provision on each
 *                       gateway: `tu-agent provision ... --technician-key FILE`;
 *   technicians token   signs a short-lived token for one technician and one gateway.
 * The private key lives in {dataDir}/technician-signing-key.pem (0600), created on first use.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TuError } from '@tu/shared';
import { parseRoles } from '@tu/shared/internal/technician-roles';
import { parseTtl, RELAY_ISSUER, signTechnicianToken } from '@tu/shared/internal/technician-token';

export const TECHNICIAN_KEY_FILE = 'technician-signing-key.pem';
export const DEFAULT_TTL_S = 8 * 3600;
/** Longest token the relay signs: a technician's visit, not a standing credential. */
export const MAX_TTL_S = 7 * 24 * 3600;

export function technicianSigningKey(dataDir: string): KeyObject {
  const file = path.join(dataDir, TECHNICIAN_KEY_FILE);
  if (fs.existsSync(file)) return createPrivateKey(fs.readFileSync(file, 'utf8'));
  fs.mkdirSync(dataDir, { recursive: true });
  const { privateKey } = generateKeyPairSync('ed25519');
  try {
    fs.writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return createPrivateKey(fs.readFileSync(file, 'utf8'));
    throw err;
  }
  return privateKey;
}

export const technicianPublicKeyPem = (dataDir: string): string => createPublicKey(technicianSigningKey(dataDir)).export({ type: 'spki', format: 'pem' }).toString().trimEnd();

export interface TechnicianTokenRequest {
  gateway: string | undefined;
  role: string | undefined;
  name: string | undefined;
  ttl: string | undefined;
}

/** Checks the request (the gateway must be registered: `isGateway`) and signs the token. */
export async function technicianToken(dataDir: string, r: TechnicianTokenRequest, isGateway: (id: string) => Promise<boolean>): Promise<string> {
  if (!r.gateway || !r.role || !r.name) throw new TuError('INVALID_REQUEST', 'technicians token needs --gateway <id> --role <view,upload,register,teach> --name <technician>');
  let roles, ttlS;
  try {
    roles = parseRoles(r.role);
    ttlS = r.ttl ? parseTtl(r.ttl) : DEFAULT_TTL_S;
  } catch (err) {
    throw new TuError('INVALID_REQUEST', (err as Error).message);
  }
  if (ttlS > MAX_TTL_S) throw new TuError('INVALID_REQUEST', `--ttl ${r.ttl} is longer than the relay signs (7d): technician tokens are short-lived`);
  if (!(await isGateway(r.gateway))) throw new TuError('UNKNOWN_GATEWAY', `no gateway ${r.gateway} is registered; add it with \`npm run relay -- gateways add ${r.gateway} --tenant <t>\``);
  return signTechnicianToken(technicianSigningKey(dataDir), { issuer: RELAY_ISSUER, gatewayId: r.gateway, sub: r.name, roles, ttlS });
}
