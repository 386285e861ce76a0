/**
 * The technician token format, shared by its signers (the device: `tu-agent token`,
 * `npm start`; the relay: `npm run relay -- technicians token`) and its verifier
 * (agent/src/http/auth/tokens.ts): a JWT signed with Ed25519 (EdDSA) carrying
 *   iss  `tu-device` or `tu-relay` (which key verifies it),
 *   aud  the gateway id (a token for another gateway is refused),
 *   sub  the technician, roles (technician-roles.ts), iat and exp (both required).
 */
import type { KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Role } from './technician-roles.js';

export const DEVICE_ISSUER = 'tu-device';
export const RELAY_ISSUER = 'tu-relay';
export type TokenIssuer = typeof DEVICE_ISSUER | typeof RELAY_ISSUER;
export const TOKEN_ALG = 'EdDSA';

export interface SignOptions {
  issuer: TokenIssuer;
  gatewayId: string;
  sub: string;
  roles: readonly Role[];
  ttlS: number;
  /** Unix seconds; default now. */
  now?: number;
}

export async function signTechnicianToken(key: KeyObject, o: SignOptions): Promise<string> {
  const now = o.now ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ roles: [...new Set(o.roles)] })
    .setProtectedHeader({ alg: TOKEN_ALG, typ: 'JWT' })
    .setIssuer(o.issuer)
    .setAudience(o.gatewayId)
    .setSubject(o.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + o.ttlS)
    .sign(key);
}

/** `90s`, `30m`, `8h`, `7d` (or plain seconds) → seconds; NaN-free, refused otherwise. */
export function parseTtl(text: string): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(text.trim());
  if (!m) throw new Error(`bad --ttl ${text}: a number with s, m, h or d (e.g. 8h)`);
  const n = Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  if (n < 60) throw new Error(`--ttl ${text} is shorter than a minute`);
  return n;
}
