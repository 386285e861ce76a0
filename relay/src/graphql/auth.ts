import { createSecretKey } from 'node:crypto';
import { importSPKI, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { TuError } from '@tu/shared';
import type { RelayConfig } from '../config.js';

/** Who a dashboard client is: from the bearer JWT's `sub` and `tenant` claims. */
export interface Principal {
  sub: string;
  tenant: string;
  /** The token's `exp` (seconds since the epoch): a graphql-ws connection is closed then. */
  exp?: number | undefined;
}

const claims = z.object({ sub: z.string().min(1).max(256), tenant: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), exp: z.number().optional() });

export interface TokenVerifier {
  verify(token: string | undefined): Promise<Principal>;
}

/** Bearer token from an `Authorization` value (`Bearer x`) or a bare token. */
export function bearer(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(value);
  return m ? m[1] : /^[\w-]+\.[\w-]+\.[\w-]+$/.test(value.trim()) ? value.trim() : undefined;
}

export async function createVerifier(jwt: RelayConfig['jwt']): Promise<TokenVerifier> {
  const alg = jwt.algorithm ?? (jwt.publicKey ? 'RS256' : 'HS256');
  const key: Parameters<typeof jwtVerify>[1] = jwt.publicKey ? await importSPKI(jwt.publicKey, alg) : createSecretKey(Buffer.from(jwt.secret!, 'utf8'));
  return {
    async verify(token) {
      if (!token) throw new TuError('UNAUTHENTICATED', 'no bearer token');
      try {
        // A token without `exp` would be valid for ever: refused.
        const { payload } = await jwtVerify(token, key, { algorithms: [alg], requiredClaims: ['exp'], ...(jwt.issuer ? { issuer: jwt.issuer } : {}), ...(jwt.audience ? { audience: jwt.audience } : {}) });
        const c = claims.safeParse(payload);
        if (!c.success) throw new Error('token lacks sub/tenant claims');
        return c.data;
      } catch (err) {
        throw new TuError('UNAUTHENTICATED', `invalid token: ${(err as Error).message.slice(0, 200)}`);
      }
    },
  };
}

/**
 * A dev token for a dashboard client (HS256 with jwt.secret). `ttl`: a jose time span (`30d`,
 * `2s`); the CLI checks the operator's --ttl before (relay/src/cli/tokens.ts).
 */
export async function issueToken(jwt: RelayConfig['jwt'], p: Principal, ttl = '30d'): Promise<string> {
  // With a public key the relay verifies with it alone: an HS256 token would be refused.
  if (jwt.publicKey) throw new TuError('CONFIG_INVALID', 'tokens issue signs HS256 tokens with jwt.secret, but jwt.publicKey is set and the relay verifies with it alone; issue tokens with your identity provider');
  if (!jwt.secret) throw new TuError('CONFIG_INVALID', 'tokens issue needs jwt.secret (HS256); with a public key, issue tokens with your identity provider');
  const c = claims.safeParse({ sub: p.sub, tenant: p.tenant });
  if (!c.success) throw new TuError('INVALID_REQUEST', `token claims: ${c.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  let t = new SignJWT({ tenant: p.tenant }).setProtectedHeader({ alg: 'HS256' }).setSubject(p.sub).setIssuedAt();
  try {
    t = t.setExpirationTime(ttl);
  } catch (err) {
    throw new TuError('INVALID_REQUEST', `token lifetime ${ttl}: ${(err as Error).message}`);
  }
  if (jwt.issuer) t = t.setIssuer(jwt.issuer);
  if (jwt.audience) t = t.setAudience(jwt.audience);
  return t.sign(createSecretKey(Buffer.from(jwt.secret, 'utf8')));
}
