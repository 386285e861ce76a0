import mqtt from 'mqtt';
import { parseGatewayStatus, parseTopic, relaySubscriptions, retryDelay, type Backoff, type Logger } from '@tu/shared';
import type { Ingest } from '../ingest/pipeline.js';
import type { Presence } from '../ingest/presence.js';
import { refreshRegistryEvery } from '../registry/refresh.js';
import type { Registry } from '../registry/registry.js';
import type { Ingress, IngressStats } from './types.js';

/**
 * Ingress through an external MQTT broker (Mosquitto, a cluster...): the broker authenticates
 * gateways and enforces the ACL generated from shared/src/gateway-contract.ts; the relay subscribes
 * as a privileged client to the contract's `relaySubscriptions()` with a persistent session (clean: false), so QoS 1 events wait in the broker
 * while the relay is down. The gateway is the topic's; the envelope's source must agree
 * (decodeInbound). An event is acknowledged to the broker once stored.
 *
 * The broker logs gateways in from its own password file, so a revoked gateway still gets in
 * and publishes: the ingest pipeline refuses its events (acknowledged, never stored nor fanned
 * out) once this instance knows of the revocation, at once when made through this instance,
 * else within `credentialCheckMs` (relay/src/registry/refresh.ts). Remove it from the broker's
 * password file to keep it out of the broker too.
 */
/**
 * Between attempts to store an event that failed (the database out while this instance looked up
 * a gateway it had not cached): the broker sends nothing more meanwhile, as for a slow write.
 */
const STORE_RETRY: Backoff = { initialDelayMs: 250, maxDelayMs: 10_000, jitter: 0.2 };

export async function startExternalIngress(opts: {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  clientId: string;
  ingest: Ingest;
  presence: Presence;
  registry: Registry;
  /** How often the registry is re-read for revocations made elsewhere (config ingress.credentialCheckMs). */
  credentialCheckMs: number;
  logger: Logger;
}): Promise<Ingress> {
  const log = opts.logger.child({ component: 'ingress' });
  const stats: IngressStats = { mode: 'external', connected: false, clients: 0, refusedConnects: 0, refusedPublishes: 0, refusedSubscribes: 0, storeRetries: 0 };
  let closing = false;
  const retries = new Set<NodeJS.Timeout>();
  let lastRetryLog = 0;
  /**
   * Stores the event, then acknowledges it (`done`). A failure is tried again, never passed to
   * mqtt.js: it sends no PUBACK then, and the broker keeps the delivery in flight until this client
   * reconnects, which nothing makes it do. Past the broker's in-flight limit (Mosquitto: 20) no
   * event reached the relay any more, for good (test/relay.mosquitto-outage.test.ts). mqtt.js hands
   * over the next message only after this one is done, so order per gateway is kept. Stopped while
   * retrying: unacknowledged, the broker sends it again to the next session (clean: false).
   */
  const store = (gatewayId: string, topic: string, payload: Buffer, done: () => void, retry = 0): void => {
    opts.ingest.handle(gatewayId, topic, payload).then(
      () => done(),
      (err: Error) => {
        if (closing) return;
        stats.storeRetries = (stats.storeRetries ?? 0) + 1;
        if (Date.now() - lastRetryLog > 10_000) {
          lastRetryLog = Date.now();
          log.warn({ err: err.message, gatewayId: gatewayId.slice(0, 64), retry }, 'could not store a gateway event; trying again (nothing more is taken from the broker meanwhile)');
        }
        const t = setTimeout(() => {
          retries.delete(t);
          store(gatewayId, topic, payload, done, retry + 1);
        }, retryDelay(retry, STORE_RETRY));
        retries.add(t);
      },
    );
  };
  const client = mqtt.connect(opts.url, {
    protocolVersion: 4,
    clientId: opts.clientId,
    clean: false,
    ...(opts.username ? { username: opts.username } : {}),
    ...(opts.password ? { password: opts.password } : {}),
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    // TCP_NODELAY on the broker connection (DESIGN §3).
    ...({ noDelay: true } as object),
  });
  client.on('connect', () => {
    stats.connected = true;
    log.info({ url: opts.url.replace(/\/\/[^@/]*@/, '//***@') }, 'connected to external broker');
  });
  client.on('close', () => {
    stats.connected = false;
  });
  client.on('error', (err) => log.warn({ err: err.message }, 'external broker connection error'));
  // Acknowledge (PUBACK) only after the event is stored.
  client.handleMessage = (packet, callback) => {
    const topic = packet.topic;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const p = topic.split('/');
    const gatewayId = p[1] ?? '';
    if (parseTopic(topic).kind === 'status') {
      const online = parseGatewayStatus(payload);
      if (online !== undefined) opts.presence.status(gatewayId, online);
      return callback();
    }
    store(gatewayId, topic, payload, () => callback());
  };
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`could not connect to ${opts.url} within 10 s`)), 10_000);
    client.once('connect', () => {
      clearTimeout(t);
      resolve();
    });
  });
  const granted = await client.subscribeAsync(Object.fromEntries(relaySubscriptions().map((f) => [f, { qos: 1 as const }])));
  if (granted.some((g) => g.qos === 128)) throw new Error(`the external broker refused the relay's subscriptions (check its ACL for user ${opts.username ?? '(anonymous)'})`);
  const stopCredentialCheck = refreshRegistryEvery({ registry: opts.registry, everyMs: opts.credentialCheckMs, logger: log });
  return {
    stats,
    url: opts.url,
    close: () => {
      closing = true;
      for (const t of retries) clearTimeout(t);
      stopCredentialCheck();
      return client.endAsync();
    },
  };
}
