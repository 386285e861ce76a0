/**
 * `tu-agent token [--role view,upload,register,teach] [--name WHO] [--ttl 12h]`: prints a
 * technician token for this gateway, signed with the device key in the data directory
 * (agent/src/http/auth/tokens.ts). Reading that directory is the proof of being on the
 * device, so this is how a first installer gets in, with no network and no relay.
 * The token alone goes to stdout (`T=$(tu-agent token)`); how to use it goes to stderr.
 */
import os from 'node:os';
import type { AgentConfig } from '@tu/firmware-config';
import { parseRoles, ROLES, type Role } from '@tu/shared/internal/technician-roles';
import { DEVICE_ISSUER, parseTtl, signTechnicianToken } from '@tu/shared/internal/technician-token';
import { readOrCreateDeviceKey } from '../http/auth/tokens.js';
import { UsageError } from './args.js';

export const DEFAULT_DEVICE_TOKEN_TTL_S = 12 * 3600;

export interface TokenOptions {
  role?: string | undefined;
  name?: string | undefined;
  ttl?: string | undefined;
}

/** Signs a device token for `config`'s gateway (also used by `npm start`). */
export async function deviceToken(config: Pick<AgentConfig, 'gatewayId' | 'dataDir' | 'auth'>, o: { roles?: readonly Role[]; sub?: string; ttlS?: number } = {}): Promise<string> {
  const ttlS = o.ttlS ?? Math.min(DEFAULT_DEVICE_TOKEN_TTL_S, config.auth.maxTokenTtlS);
  // A usage mistake (exit 2, main.ts), not a failure: `--ttl 99999h` exited 1 with INVALID_REQUEST,
  // which the unit and scripts read as "try again". The floor is parseTtl's (shared/src/technician-token.ts).
  if (ttlS > config.auth.maxTokenTtlS) throw new UsageError(`--ttl is ${ttlS} s, longer than this gateway accepts: from 60 s (1m) to ${config.auth.maxTokenTtlS} s (${inUnits(config.auth.maxTokenTtlS)}, auth.maxTokenTtlS)`);
  return signTechnicianToken(readOrCreateDeviceKey(config.dataDir), {
    issuer: DEVICE_ISSUER,
    gatewayId: config.gatewayId,
    sub: o.sub ?? `installer@${os.hostname()}`,
    roles: o.roles ?? ROLES,
    ttlS,
  });
}

/** 604800 → `7d`, 5400 → `90m`: a maximum written the way --ttl takes it. */
function inUnits(s: number): string {
  for (const [unit, n] of [['d', 86_400], ['h', 3600], ['m', 60]] as const) if (s % n === 0) return `${s / n}${unit}`;
  return `${s}s`;
}

export async function tokenCommand(config: AgentConfig, o: TokenOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  let roles: Role[] | undefined;
  let ttlS: number | undefined;
  // An option given empty (`--role "$ROLES"` with the variable unset) is a mistake, not an
  // absent option: treated as absent, `--role ''` would hand out every role.
  try {
    roles = o.role !== undefined ? parseRoles(o.role) : undefined;
    ttlS = o.ttl !== undefined ? parseTtl(o.ttl) : undefined;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (o.name !== undefined && !o.name.trim()) throw new UsageError('--name is empty: name the technician the token is for, or leave --name out');
  const token = await deviceToken(config, { ...(roles ? { roles } : {}), ...(o.name !== undefined ? { sub: o.name } : {}), ...(ttlS !== undefined ? { ttlS } : {}) });
  out(token);
  const host = config.http.host === '0.0.0.0' ? os.hostname() : config.http.host;
  err(`technician token for gateway ${config.gatewayId} (${(roles ?? ROLES).join(', ')}); open http://${host}:${config.http.port}/#token=<token> or send Authorization: Bearer <token>`);
  return 0;
}
