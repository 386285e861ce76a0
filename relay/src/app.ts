import websocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import { specifiedRules, validate } from 'graphql';
import mercurius from 'mercurius';
import { createWebSocketStream, type WebSocket } from 'ws';
import { ERROR_CODES, installErrorHandling, refuseFrameworkError, sendRefusal, TuError, type ErrorCode } from '@tu/shared';
import { bearer, type Principal } from './graphql/auth.js';
import { graphqlErrorFormatter, subscriptionError } from './graphql/errors.js';
import { graphqlLimitRules } from './graphql/limits.js';
import { graphqlRequestRefusal, unstorableLiteralRule } from './graphql/request-guard.js';
import { buildResolvers } from './graphql/resolvers.js';
import { typeDefs } from './graphql/schema.js';
import { WsConnections } from './graphql/ws-connections.js';
import { GraphqlWsGuard } from './graphql/ws-guard.js';
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

const BODY_LIMIT_BYTES = 256 * 1024;

/** mercurius' `path` below: POST /graphql and the graphql-ws WebSocket. */
const GRAPHQL_PATH = '/graphql';
/**
 * Whether a request goes to the GraphQL route, as fastify routed it. Not the text of the URL:
 * the router decodes it, so `/%67raphql` reached /graphql while `req.url.startsWith('/graphql')`
 * was false, and such a request skipped the bearer check, the request guard (8 KiB, POST only) and
 * the answer size limit (an unauthenticated 250 KB query ran for a second), and its WebSocket
 * escaped the connection_init timeout and caps.
 */
const isGraphql = (req: FastifyRequest): boolean => req.routeOptions.url === GRAPHQL_PATH;

/**
 * The relay's HTTP surface (no listen: tests use inject(); `opts.https` makes it HTTPS): POST /graphql (bearer JWT),
 * WebSocket /graphql (graphql-ws; token in connection_init), MQTT over WebSocket at /mqtt,
 * GET /api/v1/health, GET /metrics. `/` and `/assets/*` are the dashboard (relay/src/dashboard.ts).
 */
export async function buildApp(deps: AppDeps, opts: { https?: { cert: Buffer; key: Buffer } } = {}): Promise<FastifyInstance> {
  const options = {
    ...(deps.logger ? { loggerInstance: deps.logger.child({ component: 'http' }, deps.logger.levelVal < 40 ? { level: 'warn' } : {}) as FastifyBaseLogger } : { logger: false }),
    bodyLimit: BODY_LIMIT_BYTES,
    // A malformed address gets the catalogue's answer too, not fastify's own body (shared/src/http-errors.ts).
    frameworkErrors: refuseFrameworkError,
  };
  // With `https` (config http.tls) every route and WebSocket below (GraphQL, graphql-ws, /mqtt,
  // the dashboard) is served over TLS on the same port; nothing else changes. The routes never
  // touch the server type, hence the cast to the plain instance type.
  const app: FastifyInstance = opts.https ? (Fastify({ ...options, https: { cert: opts.https.cert, key: opts.https.key } }) as unknown as FastifyInstance) : Fastify(options);
  installErrorHandling(app);
  await app.register(websocket, { options: { maxPayload: 1024 * 1024 } });

  if (deps.mqttOverWebSocket) {
    const handle = deps.mqttOverWebSocket;
    app.get('/mqtt', { websocket: true }, (socket, req) => handle(createWebSocketStream(socket), req.ip));
  }

  const wsConnections = new WsConnections(deps.subscriptions);
  // Every /graphql socket from its first moment (mercurius sees it only once it speaks):
  // closed if it sends no connection_init in time or too many wait, and at its token's expiry.
  const wsGuard = new GraphqlWsGuard(deps.graphql.websocket);
  /** Upgrade requests routed to /graphql (marked in onRequest below, before the upgrade). */
  const graphqlUpgrades = new WeakSet<object>();
  app.websocketServer.on('connection', (socket: WebSocket, raw: { socket: { remoteAddress?: string } }) => {
    if (graphqlUpgrades.has(raw)) wsGuard.opened(socket, raw.socket.remoteAddress ?? '');
  });
  app.addHook('onClose', async () => wsGuard.dispose());
  app.decorateRequest('auth', undefined);
  app.addHook('onRequest', async (req: FastifyRequest, reply) => {
    // Only a real WebSocket upgrade (authenticated in connection_init below) skips the bearer
    // check; an `Upgrade: websocket` header on a plain POST used to get in unauthenticated.
    if (!isGraphql(req)) return;
    if (req.ws) {
      graphqlUpgrades.add(req.raw);
      return;
    }
    try {
      req.auth = await deps.verifier.verify(bearer(req.headers.authorization));
    } catch (err) {
      // Sent here: mercurius's own error handler would turn a thrown error into a 200 GraphQL result.
      return sendRefusal(reply, new TuError('UNAUTHENTICATED', err instanceof TuError ? err.message : undefined));
    }
  });
  // What mercurius would parse, checked first (graphql/request-guard.ts: POST only, a string
  // query within graphql.maxQueryBytes, no text the storage cannot hold).
  app.addHook('preHandler', async (req: FastifyRequest, reply) => {
    if (!isGraphql(req) || req.ws) return;
    const refusal = graphqlRequestRefusal(req, deps.graphql.maxQueryBytes);
    if (refusal) return sendRefusal(reply, refusal);
  });

  const graphqlRules = [...graphqlLimitRules(deps.graphql), unstorableLiteralRule];
  await app.register(mercurius, {
    schema: typeDefs,
    resolvers: buildResolvers({ ...deps, maxSubscriptionsPerConnection: deps.graphql.websocket.maxSubscriptionsPerConnection }),
    graphiql: false,
    path: GRAPHQL_PATH,
    validationRules: graphqlRules,
    context: (req: FastifyRequest) => ({ auth: req.auth }),
    // Catalogue codes and messages only; raw internal messages go to the log (graphql/errors.ts).
    errorFormatter: graphqlErrorFormatter({ bodyLimitBytes: BODY_LIMIT_BYTES }),
    subscription: {
      emitter: deps.emitter,
      keepAlive: 30_000,
      // mercurius passes onConnect neither the socket nor the request, but calls it as a method
      // of its connection (lib/subscription-connection.js), whose `socket` is the one to close
      // when the token expires. Should that change, connections are refused (fail closed) rather
      // than left open past their token (test/relay.graphql-guard.test.ts would fail).
      onConnect: async function (this: { socket?: WebSocket } | undefined, data: { payload?: unknown }) {
        const socket = this?.socket;
        if (!socket) {
          deps.logger?.error('refused graphql-ws connection: mercurius no longer passes onConnect its socket, so the token expiry cannot be enforced');
          return false;
        }
        wsGuard.initialised(socket);
        const p = (data.payload ?? {}) as { authorization?: unknown; Authorization?: unknown; token?: unknown; headers?: { authorization?: unknown } };
        try {
          const auth = await deps.verifier.verify(bearer(p.authorization ?? p.Authorization ?? p.headers?.authorization ?? p.token));
          // `auth.exp` stays in the connection's context (the subscribe resolver checks it too).
          wsGuard.expireAt(socket, auth.exp);
          return { auth, wsConnection: wsConnections.opened() };
        } catch (err) {
          deps.logger?.warn({ reason: (err as Error).message }, 'refused graphql-ws connection');
          return false;
        }
      },
      onDisconnect: (ctx) => wsConnections.closed((ctx as { wsConnection?: unknown }).wsConnection),
    },
  });
  // mercurius runs none of the validation that HTTP queries get on a subscription's document (the
  // standard checks, the depth, alias and cost limits, text no store keeps): the same rules run
  // here, before it executes. A document sent as an object instead of text is validated too.
  const subscriptionRules = [...specifiedRules, ...graphqlRules];
  app.graphql.addHook('preSubscriptionExecution', async (schema, document) => {
    const errors = validate(schema, document, subscriptionRules);
    if (errors.length === 0) return;
    const code = (errors.find((e) => typeof e.extensions?.code === 'string')?.extensions?.code as ErrorCode | undefined) ?? 'INVALID_REQUEST';
    throw subscriptionError(new TuError(code, errors.map((e) => e.message).join(' ').slice(0, 500)));
  });
  // Backstop behind the cost limit: an answer larger than maxResponseBytes is replaced by an error.
  app.addHook('onSend', async (req, reply, payload) => {
    if (!isGraphql(req) || typeof payload !== 'string' || Buffer.byteLength(payload) <= deps.graphql.maxResponseBytes) return payload;
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
