/** `tokens issue`: a development dashboard JWT (HS256, jwt.secret) for a registered tenant. */
import { TuError } from '@tu/shared';
import { parseTtl } from '@tu/shared/internal/technician-token';
import type { RelayConfig } from '../config.js';
import { issueToken } from '../graphql/auth.js';

export const DEFAULT_DASHBOARD_TTL = '30d';
/** Longest dashboard token the CLI signs: a dev token is not a standing credential (no revocation list). */
export const MAX_DASHBOARD_TTL_S = 90 * 86_400;

export interface DashboardTokenRequest {
  tenant: string;
  sub: string | undefined;
  ttl: string | undefined;
}

/** Checks the lifetime (as `technicians token` does: 60 s to 90 d) and that the tenant exists, then signs. */
export async function dashboardToken(jwt: RelayConfig['jwt'], r: DashboardTokenRequest, tenantExists: (id: string) => Promise<boolean>): Promise<string> {
  const ttl = r.ttl ?? DEFAULT_DASHBOARD_TTL;
  let ttlS: number;
  try {
    ttlS = parseTtl(ttl);
  } catch (err) {
    throw new TuError('INVALID_REQUEST', (err as Error).message);
  }
  if (ttlS > MAX_DASHBOARD_TTL_S) throw new TuError('INVALID_REQUEST', `--ttl ${ttl} is longer than the relay signs (90d): a dashboard token cannot be revoked, issue a new one instead`);
  if (!(await tenantExists(r.tenant))) throw new TuError('UNKNOWN_TENANT', `no tenant ${r.tenant}; add it with \`npm run relay -- tenants add ${r.tenant}\` (tenants list shows those there are)`);
  return issueToken(jwt, { sub: r.sub ?? 'dev', tenant: r.tenant }, `${ttlS}s`);
}
