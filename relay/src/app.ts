import websocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import mercurius from 'mercurius';
import { createWebSocketStream } from 'ws';
import { ERROR_CODES, installErrorHandling, sendRefusal, TuError, type ErrorCode } from '@tu/shared';
import { bearer, type Principal } from './graphql/auth.js';
import { graphqlLimitRules } from './graphql/limits.js';
import { buildResolvers } from './graphql/resolvers.js';
import { typeDefs } from './graphql/schema.js';
import { WsConnections } from './graphql/ws-connections.js';
import type { AppDeps } from './http/deps.js';
import { dashboard } from './dashboard.js';
import { brokerAuthRoutes } from './http/routes/broker-auth.js';
import { healthRoute } from './http/routes/health.js';
import { metricsRoute } from './http/routes/metrics.js';
import { readyRoute } from './http/routes/ready.js';

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
    app.get('/mqtt', { websocket: true }, (socket, req) => handle(createWebSocketStream(socket), req.ip));
  }

  const wsConnections = new WsConnections(deps.subscriptions);
  app.decorateRequest('auth', undefined);
  app.addHook('onRequest', async (req: FastifyRequest, reply) => {
    // Only a real WebSocket upgrade (authenticated in connection_init below) skips the bearer
    // check; an `Upgrade: websocket` header on a plain POST used to get in unauthenticated.
    if (!req.url.startsWith('/graphql') || req.ws) return;
    try {
      req.auth = await deps.verifier.verify(bearer(req.headers.authorization));
    } catch (err) {
      // Sent here: mercurius's own error handler would turn a thrown error into a 200 GraphQL result.
      return sendRefusal(reply, new TuError('UNAUTHENTICATED', err instanceof TuError ? err.message : undefined));
    }
  });
  // A long query text is refused before it is parsed: parsing and validating a 17 KB query of
  // aliases held the event loop for ~100 ms. The dashboard's own queries are under 1 KB.
  app.addHook('preHandler', async (req: FastifyRequest, reply) => {
    if (!req.url.startsWith('/graphql') || req.ws) return;
    const query = (req.body as { query?: unknown } | undefined)?.query;
    if (typeof query === 'string' && Buffer.byteLength(query) > deps.graphql.maxQueryBytes) {
      return sendRefusal(reply, new TuError('QUERY_TOO_COMPLEX', `The query text is ${Buffer.byteLength(query)} bytes; at most graphql.maxQueryBytes (${deps.graphql.maxQueryBytes}) are accepted. Ask for fewer fields.`));
    }
  });

  await app.register(mercurius, {
    schema: typeDefs,
    resolvers: buildResolvers(deps),
    graphiql: false,
    path: '/graphql',
    validationRules: graphqlLimitRules(deps.graphql),
    context: (req: FastifyRequest) => ({ auth: req.auth }),
    // The catalogue code goes on the GraphQLError itself: the default formatter serialises the
    // errors (toJSON), after which originalError is gone.
    errorFormatter: (execution, ctx) => {
      for (const e of execution.errors ?? []) {
        if (e.originalError instanceof TuError) Object.assign(e, { extensions: { ...(e.extensions ?? {}), code: e.originalError.code } });
      }
      return mercurius.defaultErrorFormatter(execution, ctx);
    },
    subscription: {
      emitter: deps.emitter,
      keepAlive: 30_000,
      onConnect: async (data: { payload?: unknown }) => {
        const p = (data.payload ?? {}) as { authorization?: unknown; Authorization?: unknown; token?: unknown; headers?: { authorization?: unknown } };
        try {
          const auth = await deps.verifier.verify(bearer(p.authorization ?? p.Authorization ?? p.headers?.authorization ?? p.token));
          return { auth, wsConnection: wsConnections.opened() };
        } catch (err) {
          deps.logger?.warn({ reason: (err as Error).message }, 'refused graphql-ws connection');
          return false;
        }
      },
      onDisconnect: (ctx) => wsConnections.closed((ctx as { wsConnection?: unknown }).wsConnection),
    },
  });
  // Backstop behind the cost limit: an answer larger than maxResponseBytes is replaced by an error.
  app.addHook('onSend', async (req, reply, payload) => {
    if (!req.url.startsWith('/graphql') || typeof payload !== 'string' || Buffer.byteLength(payload) <= deps.graphql.maxResponseBytes) return payload;
    const code = 'RESPONSE_TOO_LARGE' satisfies ErrorCode;
    reply.code(ERROR_CODES[code].status);
    return JSON.stringify({ data: null, errors: [{ message: `The answer is larger than ${deps.graphql.maxResponseBytes} bytes; ask for fewer fields or smaller pages.`, extensions: { code } }] });
  });
  healthRoute(app, deps);
  if (deps.brokerAuth) await brokerAuthRoutes(app, deps.brokerAuth, deps);
  readyRoute(app, deps);
  metricsRoute(app, deps);
  await app.register(dashboard);
  return app;
}
