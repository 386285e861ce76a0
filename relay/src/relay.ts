import type { FastifyInstance } from 'fastify';
import mqemitter from 'mqemitter';
import { createLogger, systemClock, type Clock, type Logger } from '@tu/shared';
import { buildApp } from './app.js';
import { storageUrl, type RelayConfig } from './config.js';
import { createVerifier } from './graphql/auth.js';
import type { AppDeps } from './http/deps.js';
import type { Emitter } from './ingest/fanout.js';
import { Ingest } from './ingest/pipeline.js';
import { Presence } from './ingest/presence.js';
import { RedisFanout } from './ingest/redis-fanout.js';
import { RedisState } from './ingest/redis-state.js';
import { StorageQueue } from './ingest/storage-queue.js';
import { ingressLimits, startEmbeddedIngress } from './ingress/embedded.js';
import { startExternalIngress } from './ingress/external.js';
import { startRabbitmqIngress } from './ingress/rabbitmq.js';
import { newBrokerAuthStats } from './http/routes/broker-auth.js';
import type { Ingress } from './ingress/types.js';
import { importRegistryFile } from './registry/file.js';
import { Registry } from './registry/registry.js';
import { verifiedLoginKey } from './registry/secrets.js';
import { openStorage } from './storage/open.js';
import { EventRetention } from './storage/retention.js';
import type { Storage } from './storage/types.js';
import { readServerTls } from './tls.js';

export interface Relay {
  /** HTTP base URL, https:// with http.tls (GraphQL at /graphql). */
  url: string;
  /** Where gateways connect: the embedded broker (mqtt://, mqtts:// with ingress.tls), the external broker URL, or (RabbitMQ) the AMQP node list. */
  mqttUrl: string;
  /** MQTT over WebSocket (embedded ingress only; wss:// with http.tls). */
  mqttWsUrl?: string;
  app: FastifyInstance;
  deps: AppDeps;
  storage: Storage;
  registry: Registry;
  /** Deletes events past the retention age (config storage.retention). */
  retention: EventRetention;
  stop(): Promise<void>;
}

/** Wraps the storage (tests: an artificially slow database). */
export type StorageWrapper = (s: Storage) => Storage;

/** Starts storage, the ingress, the fan-out and the HTTP/GraphQL server. */
export async function startRelay(config: RelayConfig, opts: { logger?: Logger; wrapStorage?: StorageWrapper; clock?: Clock } = {}): Promise<Relay> {
  const logger = opts.logger ?? createLogger({ level: config.log.level, name: 'relay' });
  // Certificates first: a bad file is a ConfigError before anything is opened.
  const httpTls = config.http.tls ? readServerTls('http.tls', config.http.tls) : undefined;
  const ingressTls = config.ingress.tls ? readServerTls('ingress.tls', config.ingress.tls) : undefined;
  const opened = await openStorage(storageUrl(config));
  const storage = opts.wrapStorage ? opts.wrapStorage(opened) : opened;
  const cleanup: (() => Promise<void>)[] = [() => storage.close()];
  try {
    if (config.registryFile) {
      const n = await importRegistryFile(config.registryFile, storage);
      logger.info(n, 'registry file imported');
    }
    // Presence, the duplicate window and verified logins shared by the instances (with several
    // behind a clustered broker, or behind a load balancer that moves a dead instance's gateways).
    const shared = config.redis
      ? new RedisState({ url: config.redis.url, keyPrefix: config.redis.keyPrefix, dedupTtlMs: config.redis.dedupTtlMs, livenessMs: config.redis.livenessMs, verifiedLoginTtlMs: config.redis.verifiedLoginTtlMs, logger: logger.child({ component: 'redis' }) })
      : undefined;
    if (shared) cleanup.push(() => shared.close());
    const loginKeySecret = config.redis?.verifiedLoginSecret ?? config.jwt.secret;
    const shareLogins = shared !== undefined && (config.redis?.verifiedLoginTtlMs ?? 0) > 0 && loginKeySecret !== undefined;
    if (shared && !shareLogins)
      logger.info(
        config.redis?.verifiedLoginTtlMs === 0
          ? 'verified gateway logins are not shared between instances (redis.verifiedLoginTtlMs is 0): a dead instance\'s gateways each cost a scrypt at their next login'
          : 'verified gateway logins are not shared between instances (set redis.verifiedLoginSecret, or jwt.secret): a dead instance\'s gateways each cost a scrypt at their next login',
      );
    const clock = opts.clock ?? systemClock;
    const startedMono = clock.monotonic();
    const registry = new Registry(storage, shareLogins ? { sharedLogins: { store: shared, key: verifiedLoginKey(loginKeySecret) } } : {});
    await registry.load();
    const queue = new StorageQueue(storage, {
      max: config.storage.queueMax,
      batchMax: config.storage.batchMax,
      writers: storage.kind === 'postgres' ? config.storage.writers : 1,
      logger: logger.child({ component: 'storage' }),
      now: () => clock.now(),
    });
    cleanup.unshift(() => queue.close());
    const now = () => new Date(clock.now());
    const presence = new Presence(queue, { authoritative: config.ingress.mode === 'embedded', now, ...(shared ? { shared } : {}), logger: logger.child({ component: 'presence' }) });
    // Each heartbeat re-asserts the connections held here: presence heals after Redis lost its data (redis-state.ts HOLD_LUA).
    shared?.holding(() => presence.held());
    // Several instances: the fan-out through Redis (redis-fanout.ts); one: in memory.
    const fanout = config.redis ? new RedisFanout({ url: config.redis.url, logger: logger.child({ component: 'fanout' }), now: () => clock.now() }) : undefined;
    const emitter = fanout?.emitter ?? (mqemitter({ concurrency: 10_000 }) as unknown as Emitter);
    cleanup.push(() => (fanout ? fanout.close() : new Promise<void>((r) => emitter.close(() => r()))));
    const ingest = new Ingest({ registry, queue, emitter, presence, logger: logger.child({ component: 'ingest' }), maxPayloadBytes: config.ingress.maxPayloadBytes, dedupWindow: config.dedupWindow, now, ...(shared ? { sharedIds: shared } : {}), ...(fanout ? { onFanoutError: (err: Error) => fanout.failed(err) } : {}) });
    ingest.prime(await storage.recentEventIds(config.dedupWindow));
    const retention = new EventRetention({ storage, clock, logger: logger.child({ component: 'retention' }) }, config.storage.retention);
    retention.start();
    // Before the queue is flushed and storage closed (cleanup runs front to back).
    cleanup.unshift(() => retention.stop());

    let ingress: Ingress | undefined;
    let mqttOverWebSocket: AppDeps['mqttOverWebSocket'];
    if (config.ingress.mode === 'embedded') {
      const emb = await startEmbeddedIngress({ host: config.ingress.host, port: config.ingress.port, registry, ingest, presence, logger, maxPayloadBytes: config.ingress.maxPayloadBytes, limits: ingressLimits(config.ingress), credentialCheckMs: config.ingress.credentialCheckMs, ...(ingressTls ? { tls: ingressTls } : {}) });
      ingress = emb;
      mqttOverWebSocket = emb.handleStream;
    }
    const deps: AppDeps = {
      storage,
      registry,
      presence,
      queue,
      storageDegradedAfterMs: config.storage.degradedAfterMs,
      ingest,
      emitter,
      ...(fanout ? { fanout: () => fanout.health() } : {}),
      verifier: await createVerifier(config.jwt),
      ingress: () => ingress?.stats,
      ...(mqttOverWebSocket ? { mqttOverWebSocket } : {}),
      ...(config.ingress.mode === 'rabbitmq' && config.ingress.rabbitmq
        ? {
            brokerAuth: {
              secret: config.ingress.rabbitmq.authSecret,
              allowFrom: config.ingress.rabbitmq.authAllowFrom,
              relayUser: config.ingress.rabbitmq.username,
              relayPassword: config.ingress.rabbitmq.password,
              relayManagesConnections: config.ingress.rabbitmq.management !== undefined,
              vhost: config.ingress.rabbitmq.vhost,
              queue: config.ingress.rabbitmq.queue,
              queueDeclared: () => ingress?.stats.rabbitmq?.queueDeclared === true,
              logins: ingressLimits(config.ingress).logins,
              stats: newBrokerAuthStats(),
            },
          }
        : {}),
      subscriptions: { active: 0, total: 0, connections: 0 },
      graphql: config.graphql,
      uptimeMs: () => clock.monotonic() - startedMono,
      logger,
    };
    const app = await buildApp(deps, httpTls ? { https: httpTls } : {});
    // Order on stop: HTTP (subscribers) and ingress first, then flush the queue, then storage.
    cleanup.unshift(() => app.close());
    await app.listen({ host: config.http.host, port: config.http.port });
    if (config.ingress.mode === 'external') {
      ingress = await startExternalIngress({ url: config.ingress.url!, username: config.ingress.username, password: config.ingress.password, clientId: config.ingress.clientId, ingest, presence, registry, credentialCheckMs: config.ingress.credentialCheckMs, logger });
    }
    if (config.ingress.mode === 'rabbitmq') {
      // After listen: the broker asks this relay (or another instance) whether the relay's own user may log in.
      ingress = await startRabbitmqIngress({ settings: config.ingress.rabbitmq!, ingest, presence, registry, logger, ...(opts.clock ? { clock: opts.clock } : {}) });
    }
    const ing = ingress!;
    cleanup.unshift(() => ing.close());
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.http.port;
    const host = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host;
    const url = `${httpTls ? 'https' : 'http'}://${host}:${port}`;
    logger.info({ url, mqttUrl: ing.url, storage: storage.kind, ingress: config.ingress.mode, ...(httpTls ? { httpCertValidTo: httpTls.validTo } : {}), ...(ingressTls ? { ingressCertValidTo: ingressTls.validTo } : {}) }, 'relay started');
    let stopped = false;
    return {
      url,
      mqttUrl: ing.url,
      ...(config.ingress.mode === 'embedded' ? { mqttWsUrl: `${httpTls ? 'wss' : 'ws'}://${host}:${port}/mqtt` } : {}),
      app,
      deps,
      storage,
      registry,
      retention,
      async stop() {
        if (stopped) return;
        stopped = true;
        for (const c of cleanup) await c().catch((err: Error) => logger.warn({ err: err.message }, 'error while stopping'));
      },
    };
  } catch (err) {
    for (const c of cleanup) await c().catch(() => undefined);
    throw err;
  }
}
