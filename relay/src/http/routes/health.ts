import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../deps.js';

/** GET /api/v1/health: ingress, storage, storage queue depth. 503 when storage or ingress is down. */
export function healthRoute(app: FastifyInstance, deps: AppDeps): void {
  app.get('/api/v1/health', async (_req, reply) => {
    const storageUp = await deps.storage.ping();
    const ingress = deps.ingress();
    const ingressUp = ingress?.connected ?? false;
    const ok = storageUp && ingressUp;
    return reply.status(ok ? 200 : 503).send({
      status: ok ? 'ok' : 'degraded',
      uptimeS: Math.round((Date.now() - deps.startedAt) / 1000),
      ingress: ingress
        ? { up: ingressUp, mode: ingress.mode, clients: ingress.clients, gatewaysOnline: deps.presence.onlineCount, ...(ingress.rabbitmq ? { rabbitmq: ingress.rabbitmq } : {}), ...(deps.brokerAuth ? { brokerAuth: deps.brokerAuth.stats } : {}) }
        : { up: false },
      storage: { up: storageUp, kind: deps.storage.kind, migrations: await deps.storage.migrations(), queueDepth: deps.queue.depth, writeErrors: deps.queue.stats.errors },
      subscriptions: { active: deps.subscriptions.active, connections: deps.subscriptions.connections },
    });
  });
}
