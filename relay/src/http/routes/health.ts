import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../deps.js';

/**
 * GET /api/v1/health: ingress, storage, storage queue depth, and with `redis.url` the fan-out
 * through Redis. A report for people: "degraded" (503) with `reasons`, one line each, when
 * anything is wrong. Load balancers ask /api/v1/ready (ready.ts), which leaves Redis out: Redis
 * is shared by every instance, so an outage of it would take them all out of the load balancer
 * at once, while each still ingests and stores (only subscribers miss events meanwhile).
 */
export function healthRoute(app: FastifyInstance, deps: AppDeps): void {
  app.get('/api/v1/health', async (_req, reply) => {
    const reasons: string[] = [];
    const storageUp = await deps.storage.ping();
    if (!storageUp) reasons.push(`database (${deps.storage.kind}) does not answer`);
    // A database may answer the ping and refuse every write (disk full, a read-only replica after
    // a failover): the storage queue tells (relay/src/ingest/storage-queue.ts).
    const writes = deps.queue.health();
    const s = (ms: number) => `${Math.round(ms / 1000)} s`;
    const stalled = Math.max(writes.failingForMs, writes.oldestWaitingMs) >= deps.storageDegradedAfterMs;
    if (stalled && writes.lastError !== undefined) reasons.push(`storage writes have failed for ${s(writes.failingForMs)} (${writes.lastError}); ${deps.queue.depth} jobs wait and their gateways' events are not acknowledged: check the database's disk space, that it accepts writes (not a read-only replica) and the relay's privileges`);
    else if (stalled) reasons.push(`a storage job has waited ${s(writes.oldestWaitingMs)} to be written (${deps.queue.depth} waiting): the database is too slow for the load or a write hangs; check its load and locks`);
    const ingress = deps.ingress();
    const ingressUp = ingress?.connected ?? false;
    if (!ingressUp) reasons.push('gateway ingress is not up');
    const fanout = deps.fanout?.();
    if (fanout && !fanout.up) reasons.push(`fan-out through redis is failing${fanout.lastError ? ` (${fanout.lastError})` : ''}: subscribers on every instance miss new events (they are still stored); check redis.url`);
    const ok = reasons.length === 0;
    return reply.status(ok ? 200 : 503).send({
      status: ok ? 'ok' : 'degraded',
      reasons,
      uptimeS: Math.round(deps.uptimeMs() / 1000),
      ingress: ingress
        ? { up: ingressUp, mode: ingress.mode, clients: ingress.clients, gatewaysOnline: deps.presence.onlineCount, ...(ingress.rabbitmq ? { rabbitmq: ingress.rabbitmq } : {}), ...(deps.brokerAuth ? { brokerAuth: deps.brokerAuth.stats } : {}) }
        : { up: false },
      storage: {
        up: storageUp,
        kind: deps.storage.kind,
        migrations: await deps.storage.migrations(),
        queueDepth: deps.queue.depth,
        writeErrors: deps.queue.stats.errors,
        ...(writes.lastBatchAt !== undefined ? { lastBatchAt: new Date(writes.lastBatchAt).toISOString() } : {}),
        oldestWaitingMs: writes.oldestWaitingMs,
        failingForMs: writes.failingForMs,
        ...(writes.lastError !== undefined ? { lastError: writes.lastError } : {}),
        // Presence updates wait outside the bounded queue, at most one per gateway (storage-queue.ts).
        presencePending: writes.presencePending,
        pushesWaiting: writes.pushesWaiting,
      },
      ...(fanout ? { redis: { fanout: { ...fanout, errors: deps.ingest.stats.fanoutErrors } } } : {}),
      subscriptions: { active: deps.subscriptions.active, connections: deps.subscriptions.connections },
    });
  });
}
