import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { checkGatewayPublish, parseGatewayStatus, retryDelay, systemClock, topicOfRabbitmqKey, type Clock, type Logger } from '@tu/shared';
import type { RelayConfig } from '../config.js';
import type { Ingest } from '../ingest/pipeline.js';
import type { Presence } from '../ingest/presence.js';
import type { Registry } from '../registry/registry.js';
import { rabbitmqBindingKeys } from './rabbitmq-broker.js';
import { rabbitmqConnectionCloser, throttledCloser } from './rabbitmq-management.js';
import type { Ingress, IngressStats, RabbitmqIngressStats } from './types.js';

export type RabbitmqSettings = NonNullable<RelayConfig['ingress']['rabbitmq']>;

/** The longest wait before a failed message is requeued (the delay doubles per delivery from retryDelayMs). */
const RETRY_MAX_MS = 60_000;

/**
 * Ingress through a RabbitMQ cluster (relay/README.md "RabbitMQ ingress"). Gateways publish over
 * MQTT to any node; the MQTT plugin routes their messages into amq.topic, where one durable
 * QUORUM queue (replicated on the nodes, so a node's death loses nothing it confirmed) is bound
 * with the contract's relay subscriptions (rabbitmqBindingKeys). Every relay instance consumes
 * that queue: competing consumers, each message delivered to one instance at a time.
 *
 * Who published is the routing key's gateway: the broker let it publish there only after the
 * relay's auth routes (relay/src/http/routes/broker-auth.ts) said so. A message is acknowledged
 * only once `ingest.handle` resolves (stored, or found a duplicate). The rule on failure:
 * - bad input (ingest refused it, a key outside the contract, a revoked gateway): nack without
 *   requeue → the broker dead-letters it to `{queue}.dead` (logged with the reason);
 * - handling failed (e.g. the registry could not be read): requeued after a delay that doubles
 *   per delivery from `retryDelayMs` to 60 s; the queue's delivery limit dead-letters a message
 *   that keeps failing, so no endless loop (defaults: 20 deliveries, about 16 minutes).
 * A slow or down database does not fail: the storage queue retries and the ack waits; at most
 * `prefetch` messages wait per instance. A lost connection (node down) is re-made on the next
 * URL of the list, with backoff; unacknowledged messages go back to the queue for any instance,
 * and storage's event-id uniqueness keeps a redelivered event to one row.
 *
 * Revocation: the broker checks a login once per auth-cache TTL, but RabbitMQ 3.10 cannot be
 * relied on to re-check the topic permission of an open MQTT connection (a busy connection kept
 * publishing after its revocation in test/relay.rabbitmq.test.ts). So the relay re-reads a
 * gateway's registry entry at most every `cacheTtlMs` and dead-letters what a revoked gateway
 * still publishes, and, with `management` configured, closes that gateway's connections through
 * the broker's management API (relay/src/ingress/rabbitmq-management.ts; at most once per
 * `closeIntervalMs` per gateway). So a revocation made anywhere (even straight in storage) cuts
 * an open connection within `cacheTtlMs` + its next publish; `gateways revoke` closes it at once.
 */
export async function startRabbitmqIngress(opts: { settings: RabbitmqSettings; ingest: Ingest; presence: Presence; registry: Registry; logger: Logger; clock?: Clock }): Promise<Ingress> {
  const s = opts.settings;
  const clock = opts.clock ?? systemClock;
  const log = opts.logger.child({ component: 'ingress' });
  const counters: RabbitmqIngressStats = { url: undefined, delivered: 0, acked: 0, statuses: 0, deadLettered: 0, requeued: 0, revoked: 0, reconnects: 0, closedConnections: 0, closeFailures: 0, queueDeclared: false, consumerCancels: 0 };
  const stats: IngressStats = { mode: 'rabbitmq', connected: false, clients: 0, refusedConnects: 0, refusedPublishes: 0, refusedSubscribes: 0, rabbitmq: counters };
  const dead = `${s.queue}.dead`;
  const backoff = { initialDelayMs: s.reconnectInitialMs, maxDelayMs: s.reconnectMaxMs, jitter: 0.2 };
  /** Gateway → whether it is active, and when that was read (ms). */
  const activeAt = new Map<string, { ok: boolean; at: number }>();
  let closing = false;
  let conn: ChannelModel | undefined;
  let channel: Channel | undefined;
  let consumerTag: string | undefined;
  let attempt = 0;
  let timer: NodeJS.Timeout | undefined;
  const inFlight = new Set<Promise<void>>();
  const closer = s.management
    ? throttledCloser(rabbitmqConnectionCloser({ settings: s.management, username: s.username, password: s.password, logger: opts.logger }), { intervalMs: s.management.closeIntervalMs, clock })
    : undefined;
  const cutOff = (gw: string): void => {
    // Not awaited: the message is dead-lettered either way; the close failing is logged by the closer.
    void closer?.request(gw, `gateway ${gw} is revoked (TU relay)`)?.then((r) => {
      if (r.ok) counters.closedConnections += r.closed;
      else counters.closeFailures++;
    });
  };

  const urlWithCredentials = (url: string): string => {
    const u = new URL(url);
    u.username = encodeURIComponent(s.username);
    u.password = encodeURIComponent(s.password);
    u.pathname = `/${encodeURIComponent(s.vhost)}`;
    // A silent peer (a frozen node) is noticed within two heartbeats; a killed node's socket closes at once.
    u.searchParams.set('heartbeat', '5');
    return u.toString();
  };
  const safe = (url: string): string => url.replace(/\/\/[^@/]*@/, '//');

  const active = async (gw: string): Promise<boolean> => {
    const known = activeAt.get(gw);
    const now = clock.now();
    if (known && now - known.at < s.cacheTtlMs) return known.ok;
    const ok = await opts.registry.active(gw);
    activeAt.set(gw, { ok, at: now });
    if (activeAt.size > 100_000) activeAt.clear();
    return ok;
  };

  const settle = (ch: Channel, msg: ConsumeMessage, how: 'ack' | 'dead' | 'requeue', event = true): void => {
    // The channel may have closed meanwhile (node lost): the broker redelivers the message then.
    if (ch !== channel) return;
    try {
      if (how === 'ack') {
        ch.ack(msg);
        if (event) counters.acked++;
      } else if (how === 'dead') {
        ch.nack(msg, false, false);
        counters.deadLettered++;
        stats.refusedPublishes++;
      } else {
        ch.nack(msg, false, true);
        counters.requeued++;
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not settle a message (channel closed); the broker redelivers it');
    }
  };

  const handle = async (ch: Channel, msg: ConsumeMessage): Promise<void> => {
    counters.delivered++;
    const key = msg.fields.routingKey;
    const topic = topicOfRabbitmqKey(key);
    const gw = topic.split('/')[1] ?? '';
    const check = checkGatewayPublish(gw, topic, false);
    if (!check.ok) {
      log.warn({ routingKey: key.slice(0, 200), reason: check.reason }, 'dead-lettered a message outside the gateway contract');
      return settle(ch, msg, 'dead');
    }
    try {
      if (!(await active(gw))) {
        counters.revoked++;
        log.warn({ gatewayId: gw }, 'dead-lettered a message of an unknown or revoked gateway');
        cutOff(gw);
        return settle(ch, msg, 'dead');
      }
      if (check.kind === 'status') {
        const online = parseGatewayStatus(msg.content);
        if (online === undefined) {
          log.warn({ gatewayId: gw }, 'dead-lettered a malformed status message (want {"status":"online"|"offline"})');
          return settle(ch, msg, 'dead');
        }
        opts.presence.status(gw, online);
        counters.statuses++;
        return settle(ch, msg, 'ack', false);
      }
      const outcome = await opts.ingest.handle(gw, topic, msg.content);
      // Refusals are logged (with their code) by the ingest pipeline.
      settle(ch, msg, outcome.ok ? 'ack' : 'dead');
    } catch (err) {
      // The quorum queue counts deliveries (x-delivery-count): each retry of the same message waits longer.
      const count = Number((msg.properties.headers as Record<string, unknown> | undefined)?.['x-delivery-count'] ?? 0) || 0;
      const delay = retryDelay(count, { initialDelayMs: s.retryDelayMs, maxDelayMs: RETRY_MAX_MS, jitter: 0.2 });
      log.error({ err: (err as Error).message, gatewayId: gw, deliveries: count + 1, retryInMs: Math.round(delay) }, 'handling a message failed; requeueing it after a delay');
      await new Promise((r) => setTimeout(r, delay));
      settle(ch, msg, 'requeue');
    }
  };

  /**
   * A channel on which the gateway queue and its dead-letter queue exist. RabbitMQ cannot change
   * a queue's arguments: once `deliveryLimit` was changed in the config, declaring the queue with
   * the new limit failed (406 PRECONDITION_FAILED) on every attempt, so the relay never consumed
   * again and, not having declared its queue, refused every gateway login. The queue as it is
   * (its old limit) is consumed instead, and health says so with what to do.
   */
  const declareQueues = async (c: ChannelModel): Promise<Channel> => {
    const ch = await c.createChannel();
    // Without a listener, amqplib turns the 406 that closes this channel into the connection's close.
    ch.on('error', () => undefined);
    await ch.prefetch(s.prefetch);
    await ch.assertQueue(dead, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    const args = { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dead, 'x-delivery-limit': s.deliveryLimit };
    try {
      await ch.assertQueue(s.queue, { durable: true, arguments: args });
      delete counters.queueSettingsIgnored;
      return ch;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 406) throw err;
      // The broker closed that channel; the queue exists (a passive check fails if it does not).
      const again = await c.createChannel();
      await again.prefetch(s.prefetch);
      await again.checkQueue(s.queue);
      counters.queueSettingsIgnored =
        `queue ${s.queue} exists with other arguments than these settings (${(err as Error).message.replace(/^.*PRECONDITION_FAILED - /, '').slice(0, 300)}); ` +
        `it is consumed as it is, so ingress.rabbitmq.deliveryLimit ${s.deliveryLimit} does not apply. RabbitMQ cannot change a queue's arguments: set deliveryLimit back to the queue's, or delete the queue once the relays have drained it (the relays declare it again with the new limit; what it holds when deleted is lost)`;
      log.error({ queue: s.queue, reason: counters.queueSettingsIgnored }, 'consuming the gateway queue with arguments other than configured');
      return again;
    }
  };

  const setup = async (url: string): Promise<void> => {
    const c = await amqp.connect(urlWithCredentials(url), { timeout: 10_000, noDelay: true });
    if (closing) {
      // close() came while this attempt was under way: it must not leave a connection behind.
      await c.close().catch(() => undefined);
      return;
    }
    // At once: a refusal while setting up is emitted as an error on the connection too.
    c.on('error', (err: Error) => log.warn({ err: err.message, url: safe(url) }, 'rabbitmq connection error'));
    try {
      const ch = await declareQueues(c);
      for (const k of rabbitmqBindingKeys()) await ch.bindQueue(s.queue, 'amq.topic', k);
      // From here on what gateways publish is routed into the queue: the auth routes let them log in.
      counters.queueDeclared = true;
      c.on('close', () => lost(c, url));
      ch.on('error', (err: Error) => log.warn({ err: err.message }, 'rabbitmq channel error'));
      ch.on('close', () => {
        if (conn === c && !closing) void c.close().catch(() => undefined);
      });
      conn = c;
      channel = ch;
      const consumer = await ch.consume(s.queue, (msg) => {
        if (!msg) {
          // The broker cancelled the consumer: the queue was deleted (`rabbitmqctl delete_queue`, the
          // management UI). The channel stays open, so nothing else would notice: the ingress stayed
          // "connected" and ready with no queue, and every gateway publish was dropped unrouted by
          // amq.topic yet acknowledged by the MQTT plugin. Reconnecting declares and binds it again;
          // meanwhile gateway logins are refused (queueDeclared, relay/src/http/routes/broker-auth.ts).
          counters.queueDeclared = false;
          counters.consumerCancels++;
          log.error({ queue: s.queue, url: safe(url) }, 'the broker cancelled the consumer of the gateway queue (was it deleted?); reconnecting to declare it again');
          if (conn === c) void c.close().catch(() => undefined);
          return;
        }
        const p = handle(ch, msg).catch((err: Error) => log.error({ err: err.message }, 'message handling failed'));
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      });
      consumerTag = consumer.consumerTag;
      stats.connected = true;
      counters.url = url;
      delete counters.lastConnectError;
      attempt = 0;
      log.info({ url: safe(url), queue: s.queue, prefetch: s.prefetch }, 'consuming the gateway queue on the rabbitmq cluster');
    } catch (err) {
      await c.close().catch(() => undefined);
      throw err;
    }
  };

  const lost = (c: ChannelModel, url: string): void => {
    if (conn !== c) return;
    conn = undefined;
    channel = undefined;
    consumerTag = undefined;
    stats.connected = false;
    if (closing) return;
    log.warn({ url: safe(url) }, 'lost the rabbitmq connection; reconnecting to the next node');
    schedule();
  };

  let next = 0;
  const connectOnce = async (): Promise<void> => {
    const url = s.urls[next % s.urls.length]!;
    next++;
    await setup(url);
  };
  const schedule = (): void => {
    if (closing || timer) return;
    const delay = retryDelay(attempt++, backoff);
    timer = setTimeout(() => {
      timer = undefined;
      counters.reconnects++;
      connectOnce().catch((err: Error) => {
        counters.lastConnectError = err.message;
        log.warn({ err: err.message, retryInMs: retryDelay(attempt, backoff) }, 'could not connect to the rabbitmq cluster');
        schedule();
      });
    }, delay);
  };

  // The first connection: each URL once now (a dead node must not delay the start while
  // another answers), then every URL in turn with backoff, for as long as it takes. A relay
  // that cannot reach the cluster yet (a cold start of everything, an overloaded broker) still
  // starts, answers the broker's auth questions (its own broker login is one of them:
  // docs/relay-deployment.md) and reports 503 on /api/v1/ready with the reason until it
  // consumes; exiting instead left the fleet bench's restarted instances down after three tries.
  for (let i = 0; i < s.urls.length && !stats.connected; i++) {
    try {
      await connectOnce();
    } catch (err) {
      counters.lastConnectError = (err as Error).message;
      log.warn({ err: (err as Error).message }, 'could not connect to a rabbitmq node; trying the next');
    }
  }
  if (!stats.connected) {
    log.warn({ err: counters.lastConnectError, urls: s.urls.map(safe) }, 'could not connect to any rabbitmq node yet; the relay keeps trying and is not ready until it does');
    schedule();
  }

  return {
    stats,
    url: s.urls.map(safe).join(','),
    async close() {
      closing = true;
      if (timer) clearTimeout(timer);
      const ch = channel;
      // Stop new deliveries, let the ones in hand be stored and acknowledged (bounded), then close;
      // whatever is still unacknowledged goes back to the queue for the other instances.
      if (ch && consumerTag) await ch.cancel(consumerTag).catch(() => undefined);
      await Promise.race([Promise.all([...inFlight]), new Promise((r) => setTimeout(r, 10_000))]);
      channel = undefined;
      const c = conn;
      conn = undefined;
      stats.connected = false;
      if (c) await c.close().catch(() => undefined);
    },
  };
}
