/**
 * `tu-agent token [--role view,upload,register,teach] [--name WHO] [--ttl 12h]`: prints a
 * technician token for this gateway, signed with the device key in the data directory
 * (agent/src/http/auth/tokens.ts). Reading that directory is the proof of being on the
 * device, so this is how a first installer gets in, with no network and no relay.
 * The token alone goes to stdout (`T=$(tu-agent token)`); how to use it goes to stderr.
 */
import os from 'node:os';
import type { AgentConfig } from '@tu/firmware-config';
import { TuError } from '@tu/shared';
import { parseRoles, ROLES, type Role } from '@tu/shared/internal/technician-roles';
import { DEVICE_ISSUER, parseTtl, signTechnicianToken } from '@tu/shared/internal/technician-token';
import { readOrCreateDeviceKey } from '../http/auth/tokens.js';

export const DEFAULT_DEVICE_TOKEN_TTL_S = 12 * 3600;

export interface TokenOptions {
  role?: string | undefined;
  name?: string | undefined;
  ttl?: string | undefined;
}

/** Signs a device token for `config`'s gateway (also used by `npm start`). */
export async function deviceToken(config: Pick<AgentConfig, 'gatewayId' | 'dataDir' | 'auth'>, o: { roles?: readonly Role[]; sub?: string; ttlS?: number } = {}): Promise<string> {
  const ttlS = o.ttlS ?? Math.min(DEFAULT_DEVICE_TOKEN_TTL_S, config.auth.maxTokenTtlS);
  if (ttlS > config.auth.maxTokenTtlS) throw new TuError('INVALID_REQUEST', `--ttl is longer than this gateway accepts (auth.maxTokenTtlS = ${config.auth.maxTokenTtlS} s)`);
  return signTechnicianToken(readOrCreateDeviceKey(config.dataDir), {
    issuer: DEVICE_ISSUER,
    gatewayId: config.gatewayId,
    sub: o.sub ?? `installer@${os.hostname()}`,
    roles: o.roles ?? ROLES,
    ttlS,
  });
}

export async function tokenCommand(config: AgentConfig, o: TokenOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  let roles: Role[] | undefined;
  let ttlS: number | undefined;
  try {
    roles = o.role ? parseRoles(o.role) : undefined;
    ttlS = o.ttl ? parseTtl(o.ttl) : undefined;
  } catch (e) {
    throw new TuError('INVALID_REQUEST', (e as Error).message);
  }
  const token = await deviceToken(config, { ...(roles ? { roles } : {}), ...(o.name ? { sub: o.name } : {}), ...(ttlS ? { ttlS } : {}) });
  out(token);
  const host = config.http.host === '0.0.0.0' ? os.hostname() : config.http.host;
  err(`technician token for gateway ${config.gatewayId} (${(roles ?? ROLES).join(', ')}); open http://${host}:${config.http.port}/#token=<token> or send Authorization: Bearer <token>`);
  return 0;
}
