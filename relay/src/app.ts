import websocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import mercurius from 'mercurius';
import { createWebSocketStream } from 'ws';
import { installErrorHandling, sendRefusal, TuError } from '@tu/shared';
import { bearer, type Principal } from './graphql/auth.js';
import { buildResolvers } from './graphql/resolvers.js';
import { typeDefs } from './graphql/schema.js';
import type { AppDeps } from './http/deps.js';
import { dashboard } from './dashboard.js';
import { healthRoute } from './http/routes/health.js';
import { metricsRoute } from './http/routes/metrics.js';

declare module 'fastify' {
  interface FastifyRequest {
    auth?: Principal;
  }
}

/**
 * The relay's HTTP surface (no listen: tests use inject()): POST /graphql (bearer JWT),
 * WebSocket /graphql (graphql-ws; token in connection_init), MQTT over WebSocket at /mqtt,
 * GET /api/v1/health, GET /metrics. `/` and `/assets/*` are the dashboard (relay/src/dashboard.ts).
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger.child({ component: 'http' }, deps.logger.levelVal < 40 ? { level: 'warn' } : {}) as FastifyBaseLogger } : { logger: false }),
    bodyLimit: 256 * 1024,
  });
  installErrorHandling(app);
  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });

  if (deps.mqttOverWebSocket) {
    const handle = deps.mqttOverWebSocket;
    app.get('/mqtt', { websocket: true }, (socket) => handle(createWebSocketStream(socket)));
  }

  app.decorateRequest('auth', undefined);
  app.addHook('onRequest', async (req: FastifyRequest, reply) => {
    if (!req.url.startsWith('/graphql') || req.headers.upgrade?.toLowerCase() === 'websocket') return;
    try {
      req.auth = await deps.verifier.verify(bearer(req.headers.authorization));
    } catch (err) {
      // Sent here: mercurius's own error handler would turn a thrown error into a 200 GraphQL result.
      return sendRefusal(reply, new TuError('UNAUTHENTICATED', err instanceof TuError ? err.message : undefined));
    }
  });

  await app.register(mercurius, {
    schema: typeDefs,
    resolvers: buildResolvers(deps),
    graphiql: false,
    path: '/graphql',
    context: (req: FastifyRequest) => ({ auth: req.auth }),
    errorFormatter: (execution, ctx) => {
      const formatted = mercurius.defaultErrorFormatter(execution, ctx);
      for (const e of formatted.response.errors ?? []) {
        const orig = (e as { originalError?: unknown }).originalError;
        if (orig instanceof TuError) Object.assign(e, { extensions: { ...(e.extensions ?? {}), code: orig.code } });
      }
      return formatted;
    },
    subscription: {
      emitter: deps.emitter,
      keepAlive: 30_000,
      onConnect: async (data: { payload?: unknown }) => {
        const p = (data.payload ?? {}) as { authorization?: unknown; Authorization?: unknown; token?: unknown; headers?: { authorization?: unknown } };
        try {
          const auth = await deps.verifier.verify(bearer(p.authorization ?? p.Authorization ?? p.headers?.authorization ?? p.token));
          deps.subscriptions.connections++;
          return { auth };
        } catch (err) {
          deps.logger?.warn({ reason: (err as Error).message }, 'refused graphql-ws connection');
          return false;
        }
      },
      onDisconnect: (ctx) => {
        if ((ctx as { auth?: Principal }).auth) deps.subscriptions.connections--;
      },
    },
  });
  healthRoute(app, deps);
  metricsRoute(app, deps);
  await app.register(dashboard);
  return app;
}
