/**
 * Technician tokens signed by the relay, for gateways that verify them offline
 * (agent/src/http/auth/tokens.ts; format in shared/src/technician-token.ts):
 *   technicians key     prints the relay's Ed25519 public key (PEM), to provision on each
 *                       gateway: `tu-agent provision ... --technician-key FILE`;
 *   technicians token   signs a short-lived token for one technician and one gateway.
 * The private key lives in {dataDir}/technician-signing-key.pem (0600), created (durably) on first use;
 * a damaged one is refused, not replaced (technicianSigningKey says why).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TuError } from '@tu/shared';
import { createFileDurableSync } from '@tu/shared/internal/durable-file';
import { parseRoles } from '@tu/shared/internal/technician-roles';
import { parseTtl, RELAY_ISSUER, signTechnicianToken } from '@tu/shared/internal/technician-token';

export const TECHNICIAN_KEY_FILE = 'technician-signing-key.pem';
export const DEFAULT_TTL_S = 8 * 3600;
/** Longest token the relay signs: a technician's visit, not a standing credential. */
export const MAX_TTL_S = 7 * 24 * 3600;

/**
 * The relay's technician signing key, created on first use. An unreadable, empty or damaged key
 * file is refused, never replaced: gateways in the field may hold its public half (provisioned,
 * `technicians key`), and a new key would silently stop every token the relay signs from working
 * there. Only the operator knows whether it was provisioned anywhere, so the error says what to
 * do either way. (A key created since it is written durably cannot come back empty after a crash.)
 */
export function technicianSigningKey(dataDir: string): KeyObject {
  const file = path.join(dataDir, TECHNICIAN_KEY_FILE);
  const existing = readKey(file);
  if (existing) return existing;
  try {
    fs.mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    throw new TuError('CONFIG_INVALID', `cannot create the relay data directory ${dataDir} for the technician signing key: ${(err as Error).message}; check dataDir (TU_RELAY_DATA_DIR) and its permissions`, { cause: err });
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  // Another command creating it at the same moment wins; its key is the one used.
  let created: boolean;
  try {
    created = createFileDurableSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  } catch (err) {
    throw new TuError('CONFIG_INVALID', `cannot create the technician signing key ${file}: ${(err as Error).message}; check free space and permissions of dataDir (TU_RELAY_DATA_DIR)`, { cause: err });
  }
  if (!created) return readKey(file)!;
  return privateKey;
}

/** The key in `file`, undefined when there is none; a file that is not a usable key is an error naming it. */
function readKey(file: string): KeyObject | undefined {
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TuError('CONFIG_UNREADABLE', `cannot read the technician signing key ${file}: ${(err as Error).message}; check its owner and permissions (0600, the relay's user)`, { cause: err });
  }
  const what = pem.trim() === '' ? 'is empty' : 'does not hold a private key';
  let key: KeyObject | undefined;
  try {
    if (pem.trim() !== '') key = createPrivateKey(pem);
  } catch {
    key = undefined;
  }
  if (key?.asymmetricKeyType === 'ed25519') return key;
  throw new TuError(
    'CONFIG_INVALID',
    `the technician signing key ${file} ${key ? `is a ${key.asymmetricKeyType ?? 'non-Ed25519'} key, not Ed25519` : what}. It is not replaced on its own: gateways provisioned with its public key accept only tokens it signs. ` +
      `Restore it from a backup of the relay's data directory; or, if no gateway was provisioned with it (or you will provision all of them again), move it aside and run \`technicians key\`: a new key is created, and its public key must be installed on every gateway (tu-agent provision --technician-key FILE)`,
  );
}

export const technicianPublicKeyPem = (dataDir: string): string => createPublicKey(technicianSigningKey(dataDir)).export({ type: 'spki', format: 'pem' }).toString().trimEnd();

export interface TechnicianTokenRequest {
  gateway: string | undefined;
  role: string | undefined;
  name: string | undefined;
  ttl: string | undefined;
}

/** A gateway as `technicianToken` needs to know it: `active` (or true), `revoked`, unknown (undefined or false). */
export type GatewayLookup = (id: string) => Promise<'active' | 'revoked' | boolean | undefined>;

/** Checks the request (the gateway must be registered and not revoked: `gatewayState`) and signs the token. */
export async function technicianToken(dataDir: string, r: TechnicianTokenRequest, gatewayState: GatewayLookup): Promise<string> {
  if (!r.gateway || !r.role || !r.name) throw new TuError('INVALID_REQUEST', 'technicians token needs --gateway <id> --role <view,upload,register,teach> --name <technician>');
  let roles, ttlS;
  try {
    roles = parseRoles(r.role);
    ttlS = r.ttl ? parseTtl(r.ttl) : DEFAULT_TTL_S;
  } catch (err) {
    throw new TuError('INVALID_REQUEST', (err as Error).message);
  }
  if (ttlS > MAX_TTL_S) throw new TuError('INVALID_REQUEST', `--ttl ${r.ttl} is longer than the relay signs (7d): technician tokens are short-lived`);
  const state = await gatewayState(r.gateway);
  if (state === undefined || state === false) throw new TuError('UNKNOWN_GATEWAY', `no gateway ${r.gateway} is registered; add it with \`npm run relay -- gateways add ${r.gateway} --tenant <t>\``);
  // A revoked gateway is out of service (maybe stolen): a token for it would let someone into it.
  if (state === 'revoked') throw new TuError('UNKNOWN_GATEWAY', `gateway ${r.gateway} is revoked: no technician token is signed for it; if it is back in service, \`npm run relay -- gateways restore ${r.gateway}\` first`);
  return signTechnicianToken(technicianSigningKey(dataDir), { issuer: RELAY_ISSUER, gatewayId: r.gateway, sub: r.name, roles, ttlS });
}
