import { Redis } from 'ioredis';
import type { RelayConfig } from '../config.js';
import { readPresence } from '../ingest/redis-state.js';
import type { SharedPresenceEntry } from '../ingest/shared-state.js';

/** How long the one connection attempt may take. */
const CONNECT_MS = 2000;

/** The shared presence of some gateways, or why Redis did not answer. */
export type SharedPresenceAnswer = { entries: Map<string, SharedPresenceEntry> } | { unavailable: string };

export interface SharedPresenceReader {
  read(gatewayIds: readonly string[]): Promise<SharedPresenceAnswer>;
  close(): Promise<void>;
}

/**
 * The shared presence (config `redis`) as `gateways list` reads it: the hashes the relay
 * instances write, read by the function their GraphQL reads them with (ingest/redis-state.ts
 * `readPresence`), so a gateway whose instance died reads offline here too. A connection of its
 * own, not a RedisState: the CLI is no instance, so it renews no liveness key and holds no
 * gateway. One attempt, no reconnecting and no offline queue: an operator waiting at a prompt
 * gets "unknown" within CONNECT_MS + a second (commandTimeout, as redis-state.ts), not a
 * command that hangs while ioredis retries (it retries for a running relay, redis-state.ts).
 */
export function openSharedPresence(redis: NonNullable<RelayConfig['redis']>): SharedPresenceReader {
  const client = new Redis(redis.url, {
    keyPrefix: redis.keyPrefix,
    lazyConnect: true,
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    // Timed here, not by ioredis: its connectTimeout stays armed on a refused socket, and the
    // command's process then lingered that long after printing.
    connectTimeout: 0,
    // A connection still being made at CONNECT_MS is cut at once, not after ioredis's 2 s.
    disconnectTimeout: 100,
    commandTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // Each failure also rejects the connect or the command; ioredis's own rejection of the connect
  // says only "Connection is closed.", so `read` reports the error seen here. Without a listener
  // ioredis prints "[ioredis] Unhandled error event" with a stack trace.
  let lastError: Error | undefined;
  client.on('error', (err: Error) => (lastError = err));
  const connect = async (): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no connection within ${CONNECT_MS} ms`)), CONNECT_MS)));
    try {
      await Promise.race([client.connect(), late]);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    async read(gatewayIds) {
      try {
        if (client.status === 'wait') await connect();
        return { entries: await readPresence(client, gatewayIds) };
      } catch (err) {
        return { unavailable: (lastError ?? (err as Error)).message };
      }
    },
    async close() {
      if (client.status === 'ready') await client.quit().catch(() => undefined);
      // Not on a connection already ended (refused): ioredis's disconnect would then arm a timer
      // for a socket close that already happened, and the process lingered that long.
      else if (client.status !== 'end') client.disconnect();
    },
  };
}
