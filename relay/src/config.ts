import fs from 'node:fs';
import { ConfigError, loadConfigFile, type Env, type EnvOverride } from '@tu/shared';
import path from 'node:path';
import { z } from 'zod';

export const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

const port = z.number().int().min(0).max(65535);

/**
 * A server certificate and its private key: PEM file paths, read when the relay starts
 * (relay/src/tls.ts checks they parse and belong together, and names the field and file when not).
 */
const tlsFiles = z
  .object({
    cert: z.string({ error: 'the path of a PEM certificate file (server certificate first, then intermediates)' }).min(1),
    key: z.string({ error: 'the path of the PEM private key file of the certificate' }).min(1),
  })
  .strict();
export type TlsFiles = z.output<typeof tlsFiles>;

export const relayConfigSchema = z
  .object({
    dataDir: z.string().min(1).default('.data/relay'),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().prefault({}),
    http: z
      .object({
        host: z.string().min(1).default('0.0.0.0'),
        port: port.default(8090),
        /** HTTPS on the HTTP port: GraphQL over https, subscriptions and MQTT at /mqtt over wss, the dashboard. */
        tls: tlsFiles.optional(),
      })
      .strict()
      .prefault({}),
    ingress: z
      .object({
        mode: z.enum(['embedded', 'external', 'rabbitmq']).default('embedded'),
        /** Embedded broker TCP port (MQTT 3.1.1; WebSocket at /mqtt on the HTTP port). */
        host: z.string().min(1).default('0.0.0.0'),
        port: port.default(1885),
        /** mqtts on the embedded broker's TCP port (the same certificate may serve http.tls). */
        tls: tlsFiles.optional(),
        /**
         * How often the instance re-reads the registry for gateways revoked or given a new secret
         * through another instance or the CLI (relay/src/registry/refresh.ts). Embedded broker: it
         * closes their open connections, so this is the longest a revoked gateway stays connected.
         * External broker: the longest its events are still taken after a revocation made elsewhere.
         */
        credentialCheckMs: z.number().int().min(200).max(3_600_000).default(30_000),
        /** External broker URL (mqtt://, mqtts://, ws://, wss://), required in external mode. */
        url: z.string().regex(/^(mqtts?|wss?):\/\//, 'must be an mqtt://, mqtts://, ws:// or wss:// URL').optional(),
        username: z.string().min(1).optional(),
        password: z.string().min(1).optional(),
        /** Client id of the relay's session on the external broker (persistent session: QoS 1 messages wait while the relay is down). */
        clientId: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).default('tu-relay'),
        maxPayloadBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(512 * 1024),
        /**
         * Embedded ingress, before authentication (relay/src/ingress/embedded.ts). Many gateways may
         * share one public address (carrier-grade NAT), hence the generous per-address rates.
         */
        limits: z
          .object({
            maxConnectBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(16 * 1024),
            maxPendingConnects: z.number().int().min(1).max(1_000_000).default(1024),
            connectBurstPerAddress: z.number().int().min(1).max(1_000_000).default(200),
            connectsPerSecondPerAddress: z.number().min(0.01).max(1_000_000).default(50),
            /**
             * All addresses together: new connections handed to the broker per second after a burst;
             * the rest wait their turn (relay/src/ingress/connect-pacer.ts), so a dead instance's
             * gateways reconnecting at once do not stall the connected ones' events.
             */
            connectBurst: z.number().int().min(1).max(1_000_000).default(200),
            connectsPerSecond: z.number().min(1).max(1_000_000).default(1000),
            /** Connections waiting their turn at most (beyond: closed), and for how long (below the agent's 15 s connect timeout). */
            maxWaitingConnects: z.number().int().min(1).max(1_000_000).default(5000),
            maxConnectWaitMs: z.number().int().min(100).max(600_000).default(10_000),
            failedLoginBurst: z.number().int().min(1).max(1_000_000).default(10),
            failedLoginsPerSecond: z.number().min(0.001).max(1_000_000).default(0.2),
          })
          .strict()
          .prefault({}),
        /**
         * RabbitMQ mode (relay/src/ingress/rabbitmq.ts, relay/README.md "RabbitMQ ingress"): relay
         * instances compete for one durable quorum queue bound to amq.topic; the broker asks the
         * relay (routes at /api/v1/rabbitmq-auth/{authSecret}/..., relay/src/http/routes/broker-auth.ts)
         * who may log in and publish. Broker config: rabbitmqBrokerConf (relay/src/ingress/rabbitmq-broker.ts).
         */
        rabbitmq: z
          .object({
            /** AMQP URLs of the cluster's nodes, tried in turn (without credentials: username/password below). */
            urls: z.array(z.string().regex(/^amqps?:\/\/[^@]+$/, 'must be an amqp:// or amqps:// URL without credentials')).min(1),
            /** The relay's own broker user; the broker asks the relay (auth routes) to check it against this password. */
            username: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).default('tu-relay'),
            password: z.string().min(16, 'ingress.rabbitmq.password must be at least 16 characters'),
            vhost: z.string().min(1).default('/'),
            /** The shared quorum queue; bad messages go to `{queue}.dead`. */
            queue: z.string().regex(/^[A-Za-z0-9_.:-]{1,200}$/).default('tu.relay.ingress'),
            /** Unacknowledged deliveries per relay instance (each waits for its event to be stored). */
            prefetch: z.number().int().min(1).max(10_000).default(200),
            /** Deliveries of one message before the broker dead-letters it (x-delivery-limit): no endless redelivery. */
            deliveryLimit: z.number().int().min(1).max(1000).default(20),
            /** A message whose handling failed (not bad input: e.g. the registry could not be read) is requeued after this delay, doubling per delivery up to 60 s. */
            retryDelayMs: z.number().int().min(10).max(600_000).default(5000),
            /** Reconnect backoff across `urls` when a node or the connection is lost. */
            reconnectInitialMs: z.number().int().min(10).max(60_000).default(500),
            reconnectMaxMs: z.number().int().min(100).max(600_000).default(10_000),
            /** Path secret of the auth routes (the broker's auth_http URLs carry it); without it they answer 404. */
            authSecret: z.string().regex(/^[A-Za-z0-9_-]{24,128}$/, 'ingress.rabbitmq.authSecret: 24-128 characters A-Z a-z 0-9 _ -'),
            /** Addresses the auth routes answer (the broker nodes); empty = any address that knows the secret. */
            authAllowFrom: z.array(z.string().min(1)).default([]),
            /** The broker's auth cache TTL (auth_cache.cache_ttl): also how often the relay re-reads a gateway's revocation. */
            cacheTtlMs: z.number().int().min(0).max(3_600_000).default(10_000),
            /**
             * Optional: the broker's management HTTP API (plugin rabbitmq_management), through which
             * the relay closes a revoked gateway's open connections (relay/src/ingress/rabbitmq-management.ts).
             * It logs in as the relay's user above, to which the auth routes then grant the
             * `administrator` tag (relay/src/http/routes/broker-auth.ts says why). Without it, an open
             * connection of a revoked gateway stays open and only what it publishes is dead-lettered.
             */
            management: z
              .object({
                /** One per node (or a load balancer), tried in turn: http(s)://HOST:15672, without credentials. */
                urls: z.array(z.string().regex(/^https?:\/\/[^@/]+\/?$/, 'must be an http:// or https:// URL of a management listener, without credentials or path')).min(1),
                /** Per request to one URL; the next URL is tried after it. */
                timeoutMs: z.number().int().min(100).max(60_000).default(5000),
                /** The ingress closes a gateway's connections at most once per this interval (no storm while it keeps publishing). */
                closeIntervalMs: z.number().int().min(100).max(600_000).default(5000),
              })
              .strict()
              .optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({})
      .refine((i) => i.mode !== 'external' || i.url, { message: 'ingress.url is required when ingress.mode is external', path: ['url'] })
      .refine((i) => i.mode === 'embedded' || !i.tls, { message: 'ingress.tls is for the embedded broker; with an external broker, TLS is the broker\'s (ingress.url mqtts:// or wss://, or the RabbitMQ cluster\'s listeners)', path: ['tls'] })
      .refine((i) => i.mode !== 'rabbitmq' || i.rabbitmq, { message: 'ingress.rabbitmq (urls, password, authSecret) is required when ingress.mode is rabbitmq', path: ['rabbitmq'] }),
    storage: z
      .object({
        /** `sqlite:PATH` (default `{dataDir}/relay.sqlite`) or `postgres://...` (optional `?schema=NAME`). */
        // `sqlite:` alone would be better-sqlite3's throwaway temporary database: refused.
        url: z
          .string()
          .regex(/^(sqlite:|postgres(ql)?:\/\/)/, 'must start with sqlite: or postgres://')
          .refine((u) => !/^sqlite:\s*$/.test(u), 'sqlite: needs the path of the database file (sqlite:/var/lib/tu-relay/relay.sqlite)')
          .optional(),
        /** Events waiting to be written; when full, gateways' acknowledgements wait (back-pressure), fan-out does not. */
        queueMax: z.number().int().min(1).max(1_000_000).default(10_000),
        batchMax: z.number().int().min(1).max(10_000).default(200),
        /** /api/v1/health says "degraded" once writes have failed, or a job has waited to be written, this long. */
        degradedAfterMs: z
          .number()
          .int()
          .min(1000)
          .max(3_600_000)
          .default(30_000)
          .describe('/api/v1/health reports "degraded" once storage writes have failed, or a queued job has waited to be written, this long (ms); readiness does not change'),
        /**
         * Batches written at once, each in its own transaction (relay/src/ingest/storage-queue.ts).
         * PostgreSQL only: the database writes one batch while the relay prepares the next. SQLite
         * has one writer and one connection, so it always writes one batch at a time.
         */
        writers: z.number().int().min(1).max(16).default(2),
        /**
         * Events older than `eventsMaxAgeDays` (by receipt time) are deleted in batches of
         * `batchSize`, every `intervalMs`, at most `maxBatchesPerRun` batches a run
         * (relay/src/storage/retention.ts). 0 days keeps events forever. Machines, analyses and
         * labelled examples are kept.
         */
        retention: z
          .object({
            eventsMaxAgeDays: z.number().min(0).max(36_500).default(90),
            intervalMs: z.number().int().min(1000).max(24 * 3600_000).default(10 * 60_000),
            batchSize: z.number().int().min(1).max(100_000).default(1000),
            maxBatchesPerRun: z.number().int().min(1).max(1_000_000).default(100),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    jwt: z
      .object({
        secret: z.string().min(16, 'jwt.secret must be at least 16 characters').optional(),
        publicKey: z.string().includes('BEGIN PUBLIC KEY', { message: 'jwt.publicKey must be a PEM (SPKI) public key' }).optional(),
        algorithm: z.enum(['HS256', 'RS256', 'ES256', 'EdDSA']).optional(),
        issuer: z.string().min(1).optional(),
        audience: z.string().min(1).optional(),
      })
      .strict()
      // Both set: the relay verifies with the public key only, so the HS256 tokens `tokens issue`
      // signs with the secret would all be refused (relay/src/graphql/auth.ts).
      .refine((j) => !(j.secret && j.publicKey), {
        message: 'set jwt.secret (HS256, tokens issued by `tokens issue`) or jwt.publicKey (tokens of your identity provider), not both: with both, the relay verifies with jwt.publicKey only. Remove one (env TU_RELAY_JWT_SECRET sets jwt.secret)',
      })
      .prefault({}),
    /** Limits on every GraphQL operation, checked before it runs (graphql/limits.ts). */
    graphql: z
      .object({
        /** Schema introspection (`__schema`, `__type`): off unless a developer turns it on. */
        introspection: z.boolean().default(false),
        /** Longest query text accepted over HTTP (refused before parsing). */
        maxQueryBytes: z.number().int().min(1024).max(1024 * 1024).default(8 * 1024),
        maxDepth: z.number().int().min(2).max(50).default(6),
        maxAliases: z.number().int().min(0).max(1000).default(20),
        /** Values an answer may hold: 1 a field, 20 a JSON field, times page sizes. */
        maxCost: z.number().int().min(100).max(1_000_000).default(12_000),
        /** A larger answer is replaced by an error (a backstop behind maxCost). */
        maxResponseBytes: z.number().int().min(64 * 1024).max(256 * 1024 * 1024).default(8 * 1024 * 1024),
        /**
         * graphql-ws sockets before their connection_init (relay/src/graphql/ws-guard.ts): closed
         * (4408) after initTimeoutMs; beyond maxPending waiting in all or maxPendingPerAddress
         * from one address, a new socket is closed at once (1013, try again later).
         */
        websocket: z
          .object({
            initTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
            maxPending: z.number().int().min(1).max(1_000_000).default(1000),
            maxPendingPerAddress: z.number().int().min(1).max(1_000_000).default(50),
            /** Subscriptions one graphql-ws connection may hold at once (the dashboard holds one). */
            maxSubscriptionsPerConnection: z.number().int().min(1).max(10_000).default(20),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** Optional JSON file of tenants and gateways imported at start (see README). */
    registryFile: z.string().min(1).optional(),
    /**
     * Redis shared by the relay instances: subscription fan-out (mqemitter-redis), gateway
     * presence and the shared window of recent event ids (relay/src/ingest/redis-state.ts).
     */
    redis: z
      .object({
        url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// URL'),
        /** Prefix of the relay's keys; the instances of one deployment share it. */
        keyPrefix: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, '1-64 of A-Z a-z 0-9 _ . : -').default('tu:relay:'),
        /** How long an event id stays in the shared duplicate window (a broker redelivers within it). */
        dedupTtlMs: z.number().int().min(1000).max(7 * 24 * 3600_000).default(15 * 60_000),
        /** An instance that has not renewed its liveness key for this long is gone: gateways it held are offline. */
        livenessMs: z.number().int().min(500).max(600_000).default(30_000),
        /**
         * How long a gateway login verified by one instance is accepted by the others without
         * scrypt (relay/src/registry/secrets.ts). 0 = not shared. Needs jwt.secret or
         * verifiedLoginSecret, which keys the shared tags.
         */
        verifiedLoginTtlMs: z.number().int().min(0).max(30 * 24 * 3600_000).default(24 * 3600_000),
        /** Keys the shared login tags (at least 32 characters, the same on every instance); default: derived from jwt.secret. */
        verifiedLoginSecret: z.string().min(32, 'redis.verifiedLoginSecret must be at least 32 characters').optional(),
      })
      .strict()
      .optional(),
    /** Recent event ids kept in memory to drop duplicates before fan-out. */
    dedupWindow: z.number().int().min(100).max(10_000_000).default(100_000),
  })
  .strict();

export type RelayConfig = z.output<typeof relayConfigSchema>;

export { ConfigError } from '@tu/shared';

export const ENV_OVERRIDES: Record<string, EnvOverride> = {
  TU_RELAY_DATA_DIR: { path: ['dataDir'], type: 'string' },
  TU_RELAY_LOG_LEVEL: { path: ['log', 'level'], type: 'string' },
  TU_RELAY_HTTP_HOST: { path: ['http', 'host'], type: 'string' },
  TU_RELAY_HTTP_PORT: { path: ['http', 'port'], type: 'number' },
  TU_RELAY_HTTP_TLS_CERT: { path: ['http', 'tls', 'cert'], type: 'string' },
  TU_RELAY_HTTP_TLS_KEY: { path: ['http', 'tls', 'key'], type: 'string' },
  TU_RELAY_INGRESS_MODE: { path: ['ingress', 'mode'], type: 'string' },
  TU_RELAY_MQTT_PORT: { path: ['ingress', 'port'], type: 'number' },
  TU_RELAY_MQTT_TLS_CERT: { path: ['ingress', 'tls', 'cert'], type: 'string' },
  TU_RELAY_MQTT_TLS_KEY: { path: ['ingress', 'tls', 'key'], type: 'string' },
  TU_RELAY_MQTT_URL: { path: ['ingress', 'url'], type: 'string' },
  TU_RELAY_MQTT_USERNAME: { path: ['ingress', 'username'], type: 'string' },
  TU_RELAY_MQTT_PASSWORD: { path: ['ingress', 'password'], type: 'string' },
  TU_RELAY_RABBITMQ_URLS: { path: ['ingress', 'rabbitmq', 'urls'], type: 'list' },
  TU_RELAY_RABBITMQ_USERNAME: { path: ['ingress', 'rabbitmq', 'username'], type: 'string' },
  TU_RELAY_RABBITMQ_PASSWORD: { path: ['ingress', 'rabbitmq', 'password'], type: 'string' },
  TU_RELAY_RABBITMQ_QUEUE: { path: ['ingress', 'rabbitmq', 'queue'], type: 'string' },
  TU_RELAY_RABBITMQ_PREFETCH: { path: ['ingress', 'rabbitmq', 'prefetch'], type: 'number' },
  TU_RELAY_RABBITMQ_AUTH_SECRET: { path: ['ingress', 'rabbitmq', 'authSecret'], type: 'string' },
  TU_RELAY_RABBITMQ_AUTH_ALLOW_FROM: { path: ['ingress', 'rabbitmq', 'authAllowFrom'], type: 'list' },
  TU_RELAY_RABBITMQ_CACHE_TTL_MS: { path: ['ingress', 'rabbitmq', 'cacheTtlMs'], type: 'number' },
  TU_RELAY_RABBITMQ_MANAGEMENT_URLS: { path: ['ingress', 'rabbitmq', 'management', 'urls'], type: 'list' },
  TU_RELAY_RABBITMQ_MANAGEMENT_TIMEOUT_MS: { path: ['ingress', 'rabbitmq', 'management', 'timeoutMs'], type: 'number' },
  TU_RELAY_RABBITMQ_MANAGEMENT_CLOSE_INTERVAL_MS: { path: ['ingress', 'rabbitmq', 'management', 'closeIntervalMs'], type: 'number' },
  TU_RELAY_STORAGE_URL: { path: ['storage', 'url'], type: 'string' },
  TU_RELAY_STORAGE_WRITERS: { path: ['storage', 'writers'], type: 'number' },
  TU_RELAY_JWT_SECRET: { path: ['jwt', 'secret'], type: 'string' },
  TU_RELAY_JWT_ISSUER: { path: ['jwt', 'issuer'], type: 'string' },
  TU_RELAY_JWT_AUDIENCE: { path: ['jwt', 'audience'], type: 'string' },
  TU_RELAY_REGISTRY_FILE: { path: ['registryFile'], type: 'string' },
  TU_RELAY_REDIS_URL: { path: ['redis', 'url'], type: 'string' },
  TU_RELAY_REDIS_KEY_PREFIX: { path: ['redis', 'keyPrefix'], type: 'string' },
  TU_RELAY_REDIS_VERIFIED_LOGIN_SECRET: { path: ['redis', 'verifiedLoginSecret'], type: 'string' },
};

/** The storage URL, defaulting to SQLite in the data directory. */
export const storageUrl = (c: RelayConfig): string => c.storage.url ?? `sqlite:${path.join(c.dataDir, 'relay.sqlite')}`;

/**
 * The HS256 secret of a development setup: `npm start` (scripts/start-all.ts) creates it in
 * the relay's data directory, and every relay command with that data directory finds it
 * there, so `npm run relay -- ...` works beside `npm start` without TU_RELAY_JWT_SECRET.
 */
export const devJwtSecretFile = (dataDir: string): string => path.join(dataDir, 'jwt-secret');

/**
 * Reads the JSON config file, applies environment overrides (TU_RELAY_*), validates, and
 * returns the config or throws a ConfigError naming every bad field and where it came from.
 * Without jwt.secret and jwt.publicKey, the development secret file in dataDir is used
 * when it exists (devJwtSecretFile); otherwise the error says what to set.
 */
export function loadRelayConfig(opts: { file?: string; env?: Env; overrides?: Record<string, unknown> } = {}): RelayConfig {
  const config = loadConfigFile(relayConfigSchema, { what: 'relay configuration', ...opts, envOverrides: ENV_OVERRIDES });
  if (config.jwt.secret || config.jwt.publicKey) return config;
  const file = devJwtSecretFile(config.dataDir);
  let secret: string | undefined;
  try {
    secret = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`cannot read the development JWT secret ${file}: ${(err as Error).message}`);
  }
  const message =
    secret === undefined
      ? `set jwt.secret (HS256; env TU_RELAY_JWT_SECRET) or jwt.publicKey. For the development setup, \`npm start\` creates one in .data/relay/jwt-secret of its checkout (DIR/relay/jwt-secret with --data DIR), but there is none in ${path.resolve(file)}: run the command in that checkout, or set TU_RELAY_DATA_DIR=DIR/relay`
      : `${file} holds ${secret.length} characters, below the 16 jwt.secret needs; delete it and run \`npm start\` again, or set TU_RELAY_JWT_SECRET`;
  if (secret === undefined || secret.length < 16) throw new ConfigError(`invalid relay configuration${opts.file ? ` in ${opts.file}` : ''}:\n  - jwt.secret: ${message}`, [{ field: 'jwt.secret', message }]);
  return { ...config, jwt: { ...config.jwt, secret } };
}
