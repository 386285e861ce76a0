import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../deps.js';
import { loadMigrations } from '../../storage/migrate.js';

export interface Readiness {
  ready: boolean;
  /** Why not, one line each (empty when ready). */
  reasons: string[];
}

/**
 * Whether this instance should get traffic from a load balancer: its database answers, every
 * migration this build ships is applied (another instance may still be migrating), and its
 * gateway ingress is up (embedded broker listening, or connected to the external broker).
 * Unlike /api/v1/health (a report for people), this is a yes/no with reasons.
 *
 * Failing or stalled storage writes (health.ts, storage.degradedAfterMs) are left out on purpose:
 * the database is shared by every instance, so a write failure there (disk full, a read-only
 * replica) would take them all out of the load balancer at once, and with them the fan-out and
 * GraphQL reads that still work. Gateways lose nothing meanwhile: their events wait
 * unacknowledged (the storage queue, then the gateways' outboxes) until writes succeed again.
 */
export async function readinessOf(deps: Pick<AppDeps, 'storage' | 'ingress'>): Promise<Readiness> {
  const reasons: string[] = [];
  const up = await deps.storage.ping();
  if (!up) reasons.push(`database (${deps.storage.kind}) does not answer`);
  else {
    const applied = new Set(await deps.storage.migrations().catch(() => [] as number[]));
    const missing = [...new Set(loadMigrations().filter((m) => !m.dialect || m.dialect === deps.storage.kind).map((m) => m.version))].filter((v) => !applied.has(v));
    if (missing.length > 0) reasons.push(`migrations not applied: ${missing.join(', ')}`);
  }
  const ingress = deps.ingress();
  if (!ingress) reasons.push('gateway ingress not started');
  else if (!ingress.connected) reasons.push(ingress.mode === 'external' ? 'not connected to the external broker' : ingress.mode === 'rabbitmq' ? `not connected to any rabbitmq node${ingress.rabbitmq?.lastConnectError ? ` (last attempt: ${ingress.rabbitmq.lastConnectError})` : ''}` : 'gateway ingress not listening');
  return { ready: reasons.length === 0, reasons };
}

/** GET /api/v1/ready: 200 `{ready: true}` or 503 `{ready: false, reasons}`; no authentication (it tells nothing about tenants). */
export function readyRoute(app: FastifyInstance, deps: AppDeps): void {
  app.get('/api/v1/ready', async (_req, reply) => {
    const r = await readinessOf(deps);
    return reply
      .status(r.ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(r);
  });
}
