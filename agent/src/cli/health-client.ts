/** Reads the local agent's /api/v1/health (status and update use it). */
import { z } from 'zod';
import type { AgentConfig } from '@tu/firmware-config';
import { DEVICE_ISSUER, signTechnicianToken } from '@tu/shared/internal/technician-token';
import { readDeviceKey } from '../http/auth/tokens.js';

export const HealthSummarySchema = z
  .object({
    status: z.enum(['ok', 'degraded']),
    gatewayId: z.string(),
    agent: z.object({ version: z.string() }).optional(),
    uptimeS: z.number(),
    // The details below come only with a token granting `view` (agent/src/http/routes/health.ts).
    reasons: z.array(z.string()).optional(),
    broker: z.object({ up: z.boolean(), clients: z.number() }).loose().optional(),
    services: z.record(z.string(), z.object({ up: z.boolean(), step: z.string() }).loose()).optional(),
    model: z.object({ state: z.string(), id: z.string().optional(), version: z.string().optional(), backend: z.string().optional() }).loose().optional(),
    uplink: z.unknown().optional(),
  })
  .loose();
export type HealthSummary = z.infer<typeof HealthSummarySchema>;

export type HealthRead = { ok: true; status: number; body: HealthSummary } | { ok: false; reason: string };

/** `token`: a technician token with `view` for the full view; without one, the public summary. */
export async function readHealth(port: number, timeoutMs = 2000, token?: string): Promise<HealthRead> {
  const url = `http://127.0.0.1:${port}/api/v1/health`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
    const parsed = HealthSummarySchema.safeParse(await res.json());
    if (!parsed.success) return { ok: false, reason: `${url} answered ${res.status} with an unexpected body` };
    return { ok: true, status: res.status, body: parsed.data };
  } catch (err) {
    return { ok: false, reason: `${url} did not answer (${(err as Error).message})` };
  }
}

/**
 * A one-minute `view` token for the local agent, signed with the device key, so that health
 * carries its reasons; undefined when this process cannot read the key (then the public summary).
 * Signed for each read: a token signed before the wall clock jumped (NTP) would be expired.
 */
export async function localViewToken(config: Pick<AgentConfig, 'gatewayId' | 'dataDir'>, sub: string): Promise<string | undefined> {
  const key = readDeviceKey(config.dataDir);
  return key ? signTechnicianToken(key, { issuer: DEVICE_ISSUER, gatewayId: config.gatewayId, sub, roles: ['view'], ttlS: 60 }) : undefined;
}
