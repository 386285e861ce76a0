import type { Duplex } from 'node:stream';
import type { Logger } from '@tu/shared';
import type { TokenVerifier } from '../graphql/auth.js';
import type { GraphqlLimits } from '../graphql/limits.js';
import type { Emitter } from '../ingest/fanout.js';
import type { Ingest } from '../ingest/pipeline.js';
import type { FanoutHealth } from '../ingest/redis-fanout.js';
import type { Presence } from '../ingest/presence.js';
import type { StorageQueue } from '../ingest/storage-queue.js';
import type { IngressStats } from '../ingress/types.js';
import type { Registry } from '../registry/registry.js';
import type { Storage } from '../storage/types.js';
import type { BrokerAuthOptions } from './routes/broker-auth.js';

/** Everything the HTTP/GraphQL app needs (built by startRelay, or by a test). */
export interface AppDeps {
  storage: Storage;
  registry: Registry;
  presence: Presence;
  queue: StorageQueue;
  /** Health says "degraded" once writes have failed, or a job has waited, this long (config storage.degradedAfterMs). */
  storageDegradedAfterMs: number;
  ingest: Ingest;
  emitter: Emitter;
  /** The fan-out through Redis, when configured (`redis.url`): whether it works now. */
  fanout?: () => FanoutHealth;
  verifier: TokenVerifier;
  /** Limits on every GraphQL operation (graphql/limits.ts). */
  graphql: GraphqlLimits;
  ingress: () => IngressStats | undefined;
  /** MQTT over WebSocket at /mqtt (embedded ingress only). */
  mqttOverWebSocket?: (stream: Duplex, remoteAddress?: string) => void;
  /** RabbitMQ ingress: the broker's auth-backend routes (relay/src/http/routes/broker-auth.ts). */
  brokerAuth?: BrokerAuthOptions;
  subscriptions: { active: number; total: number; connections: number };
  /** Milliseconds since the relay started, on the monotonic clock (the wall clock may be set meanwhile). */
  uptimeMs: () => number;
  logger?: Logger;
}
