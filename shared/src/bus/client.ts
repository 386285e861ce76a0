import os from 'node:os';
import { MqttClient, type IClientOptions } from 'mqtt';
import { catalog, type CommandType, type DataOf, type EventType, type InputOf, type MessageType, type ServiceName } from '../catalog.js';
import type { CloudEvent } from '../envelope.js';
import { TuError } from '../errors.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import { topicMatches, topics } from '../topics.js';
import { decodeInbound, type Rejection } from './decode.js';
import { summarise } from './summarise.js';
import { presenceSchema, type Presence } from './presence.js';
import { openTransport, type Transport } from './transport.js';

const noLog = (): void => {};

export const DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024;
const DEAD_LETTER_PREVIEW_BYTES = 1024;
const MAX_DROPS_KEPT = 64;

export type EventOf<T extends EventType> = CloudEvent<T, DataOf<T>>;
export type CommandOf<T extends CommandType> = CloudEvent<T, DataOf<T>>;
export type AnyEvent = { [K in EventType]: EventOf<K> }[EventType];

export interface BusClientOptions {
  gatewayId: string;
  service: ServiceName;
  /** MQTT client id; also the instance id commands are addressed to. */
  instanceId: string;
  username: string;
  password: string;
  transport: Transport;
  logger: Logger;
  maxPayloadBytes?: number;
  /** Announce this instance as a handler of these commands (retained presence + last will). */
  handles?: CommandType[];
  connectTimeoutMs?: number;
  /** The release this client runs, announced in its presence (agent/src/bus.ts passes the agent's). */
  version?: string;
  /**
   * An observer (UI feed, uplink, tools) only subscribes to events: the broker lets it
   * publish nothing, so it never publishes dead letters (it counts and logs rejections).
   */
  observer?: boolean;
}

export interface PublishMeta {
  subject: string;
  traceparent?: string;
  id?: string;
  time?: string;
}

export interface BusStats {
  received: number;
  published: number;
  rejected: number;
  deadLettered: number;
  handlerErrors: number;
  rejectedByCode: Record<string, number>;
}

type Handler = (topic: string, payload: Buffer) => void;

/**
 * Typed bus client over mqtt.js. Every inbound message is size-checked and validated
 * (envelope, topic/type agreement, producer, data schema) before any handler sees it;
 * rejected messages go to the dead-letter topic with their reason and are counted.
 */
export class BusClient {
  readonly gatewayId: string;
  readonly service: ServiceName;
  readonly instanceId: string;
  readonly stats: BusStats = { received: 0, published: 0, rejected: 0, deadLettered: 0, handlerErrors: 0, rejectedByCode: {} };
  readonly #mqtt: MqttClient;
  readonly #log: Logger;
  readonly #maxPayload: number;
  readonly #source: string;
  readonly #subs = new Map<string, Set<Handler>>();
  readonly #presence?: Presence;
  readonly #observer: boolean;
  #ready = false;
  #closed = false;
  #offlineSince: number | undefined;
  /** When the connection was lost, newest last (at most MAX_DROPS_KEPT). */
  readonly #drops: number[] = [];

  private constructor(opts: BusClientOptions, mqtt: MqttClient, presence: Presence | undefined) {
    this.gatewayId = opts.gatewayId;
    this.service = opts.service;
    this.instanceId = opts.instanceId;
    this.#mqtt = mqtt;
    this.#log = opts.logger.child({ bus: opts.instanceId });
    this.#maxPayload = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.#source = `/gateways/${opts.gatewayId}/${opts.service}`;
    this.#presence = presence;
    this.#observer = opts.observer ?? false;
    mqtt.on('message', (topic, payload) => this.#dispatch(topic, payload));
    mqtt.on('connect', () => {
      this.#log.debug('bus connected');
      this.#offlineSince = undefined;
      void this.#announce();
    });
    mqtt.on('close', () => {
      if (this.#closed) return;
      const now = Date.now();
      this.#offlineSince ??= now;
      this.#drops.push(now);
      if (this.#drops.length > MAX_DROPS_KEPT) this.#drops.shift();
    });
    mqtt.on('offline', () => this.#log.warn('bus offline; reconnecting'));
    mqtt.on('error', (err) => this.#log.warn({ err: err.message }, 'bus error'));
  }

  static connect(opts: BusClientOptions): Promise<BusClient> {
    const presence: Presence | undefined = opts.handles
      ? {
          service: opts.service,
          instanceId: opts.instanceId,
          status: 'online',
          handles: opts.handles,
          startedAt: new Date().toISOString(),
          pid: process.pid,
          host: os.hostname(),
          // Not made up: a client that does not say its release is announced as such.
          version: opts.version ?? 'unknown',
        }
      : undefined;
    const mqttOpts: IClientOptions = {
      protocolVersion: 4,
      clientId: opts.instanceId,
      username: opts.username,
      password: opts.password,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 500,
      connectTimeout: opts.connectTimeoutMs ?? 10_000,
      resubscribe: true,
      // mqtt.js calls its `debug` logger several times per packet; with debug output off
      // those calls and their enabled-checks were ~7% of the orchestrator bench's CPU
      // (bench/orchestrator.bench.ts). DEBUG=mqttjs* still gets mqtt.js's own logger.
      ...(process.env['DEBUG'] ? {} : { log: noLog }),
      ...(presence
        ? { will: { topic: topics.presence(opts.gatewayId, opts.service, opts.instanceId), payload: Buffer.alloc(0), qos: 1, retain: true } }
        : {}),
    };
    const mqtt = new MqttClient(() => openTransport(opts.transport), mqttOpts);
    const client = new BusClient(opts, mqtt, presence);
    return new Promise((resolve, reject) => {
      const onConnect = () => {
        mqtt.off('error', onError);
        resolve(client);
      };
      const onError = (err: Error & { code?: number }) => {
        mqtt.off('connect', onConnect);
        mqtt.end(true);
        const refused = err.code === 4 || err.code === 5;
        reject(new TuError(refused ? 'BUS_AUTH_REFUSED' : 'BUS_CONNECT_FAILED', `${opts.instanceId}: ${err.message}`, { cause: err }));
      };
      mqtt.once('connect', onConnect);
      mqtt.once('error', onError);
    });
  }

  get connected(): boolean {
    return this.#mqtt.connected;
  }

  /**
   * How steady this client's connection is: off the bus since when (ms), and how many times it
   * lost the connection within the last `windowMs`. A client that keeps losing its connection
   * looks connected most of the time, yet misses messages (health reads this; see
   * agent/src/http/routes/health.ts).
   */
  connectionHealth(now: number, windowMs: number): { connected: boolean; offlineMs: number; drops: number } {
    return {
      connected: this.#mqtt.connected,
      offlineMs: this.#offlineSince === undefined ? 0 : now - this.#offlineSince,
      drops: this.#drops.filter((t) => now - t <= windowMs).length,
    };
  }

  /** Publishes an event this service produces. The data is validated before it leaves. */
  publishEvent<T extends EventType>(type: T, data: InputOf<T>, meta: PublishMeta): Promise<EventOf<T>> {
    return this.#publish(type, topics.event(this.gatewayId, type), data, meta) as Promise<EventOf<T>>;
  }

  /** Sends a command to exactly one handler instance. */
  sendCommand<T extends CommandType>(type: T, instanceId: string, data: InputOf<T>, meta: PublishMeta): Promise<CommandOf<T>> {
    return this.#publish(type, topics.command(this.gatewayId, type, instanceId), data, meta) as Promise<CommandOf<T>>;
  }

  /** Re-publishes an already built event unchanged (same id: consumers deduplicate). */
  async republish(event: AnyEvent): Promise<void> {
    await this.#send(topics.event(this.gatewayId, event.type), JSON.stringify(event));
  }

  /** Builds a validated event envelope without sending it (for write-ahead persistence). */
  buildEvent<T extends EventType>(type: T, data: InputOf<T>, meta: PublishMeta): EventOf<T> {
    return this.#build(type, data, meta) as EventOf<T>;
  }

  /** Subscribes to events; handlers receive only validated events. Returns an unsubscribe function. */
  async onEvents(types: readonly EventType[] | 'all', handler: (event: AnyEvent) => void | Promise<void>): Promise<() => Promise<void>> {
    const filters = types === 'all' ? [topics.allEvents(this.gatewayId)] : types.map((t) => topics.event(this.gatewayId, t));
    const h: Handler = (topic, payload) => {
      const res = decodeInbound(topic, payload, { gatewayId: this.gatewayId, maxPayloadBytes: this.#maxPayload });
      if (!res.ok) return this.#reject(topic, payload, res.rejection);
      if (res.parsed.kind !== 'event') return;
      this.#run(() => handler(res.event as AnyEvent), topic);
    };
    return this.#subscribe(filters, h);
  }

  /** Handles commands addressed to this instance. */
  async handleCommands<T extends CommandType>(type: T, handler: (cmd: CommandOf<T>) => void | Promise<void>): Promise<() => Promise<void>> {
    const filter = topics.command(this.gatewayId, type, this.instanceId);
    const h: Handler = (topic, payload) => {
      const res = decodeInbound(topic, payload, { gatewayId: this.gatewayId, maxPayloadBytes: this.#maxPayload });
      if (!res.ok) return this.#reject(topic, payload, res.rejection);
      this.#run(() => handler(res.event as CommandOf<T>), topic);
    };
    return this.#subscribe([filter], h);
  }

  /** Watches handler presence: `present` with the announcement, or `gone` when the retained status is cleared. */
  async onPresence(handler: (change: { instanceId: string; service: string; presence: Presence | null }) => void): Promise<() => Promise<void>> {
    const h: Handler = (topic, payload) => {
      const parts = topic.split('/');
      const service = parts[4] ?? '';
      const instanceId = parts[5] ?? '';
      if (payload.length === 0) return this.#run(() => handler({ instanceId, service, presence: null }), topic);
      let json: unknown;
      try {
        json = JSON.parse(payload.toString('utf8'));
      } catch {
        return this.#reject(topic, payload, { code: 'INVALID_JSON', message: 'presence payload is not JSON' });
      }
      const p = presenceSchema.safeParse(json);
      if (!p.success) return this.#reject(topic, payload, { code: 'INVALID_DATA', message: `presence: ${summarise(p.error.issues)}` });
      if (p.data.instanceId !== instanceId || p.data.service !== service) {
        return this.#reject(topic, payload, { code: 'INVALID_DATA', message: `presence of ${p.data.service}/${p.data.instanceId} published on the topic of ${service}/${instanceId}` });
      }
      this.#run(() => handler({ instanceId, service, presence: p.data }), topic);
    };
    return this.#subscribe([topics.allPresence(this.gatewayId)], h);
  }

  /**
   * Announces this handler instance (retained presence; the last will clears it).
   * Call after the command handlers are registered, so no command arrives unheard.
   */
  async markReady(): Promise<void> {
    this.#ready = true;
    await this.#announce();
  }

  /** Closes the client; a handler instance first clears its retained presence (a clean disconnect suppresses the will). */
  async close(timeoutMs = 1000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Bounded: with the broker gone, a QoS 1 publish or a graceful end would wait forever.
    const bounded = <T>(p: Promise<T>) =>
      Promise.race([p.then(() => true, () => false), new Promise<boolean>((r) => setTimeout(r, timeoutMs, false).unref())]);
    if (this.#presence && this.#mqtt.connected) {
      await bounded(this.#mqtt.publishAsync(topics.presence(this.gatewayId, this.service, this.instanceId), Buffer.alloc(0), { qos: 1, retain: true }));
    }
    if (!(await bounded(this.#mqtt.endAsync()))) await this.#mqtt.endAsync(true).catch(() => undefined);
  }

  /** Drops the connection without a clean disconnect (tests: the broker publishes the last will). */
  destroyConnection(): void {
    this.#closed = true;
    this.#mqtt.stream?.destroy();
    this.#mqtt.end(true);
  }

  #build(type: MessageType, data: unknown, meta: PublishMeta): CloudEvent {
    const parsed = catalog[type].schema.safeParse(data);
    if (!parsed.success) {
      throw new TuError('BUS_PUBLISH_INVALID', `${type}: ${summarise(parsed.error.issues)}`);
    }
    const event: CloudEvent = {
      specversion: '1.0',
      id: meta.id ?? newId(),
      source: this.#source,
      type,
      time: meta.time ?? new Date().toISOString(),
      subject: meta.subject,
      datacontenttype: 'application/json',
      ...(meta.traceparent ? { traceparent: meta.traceparent } : {}),
      data: parsed.data,
    };
    return event;
  }

  async #publish(type: MessageType, topic: string, data: unknown, meta: PublishMeta): Promise<CloudEvent> {
    const event = this.#build(type, data, meta);
    await this.#send(topic, JSON.stringify(event));
    return event;
  }

  async #send(topic: string, payload: string): Promise<void> {
    if (this.#closed) throw new TuError('BUS_CLOSED');
    if (this.#observer) throw new TuError('BUS_READ_ONLY');
    await this.#mqtt.publishAsync(topic, payload, { qos: 1 });
    this.stats.published++;
  }

  async #subscribe(filters: string[], h: Handler): Promise<() => Promise<void>> {
    const fresh: string[] = [];
    for (const f of filters) {
      let set = this.#subs.get(f);
      if (!set) {
        set = new Set();
        this.#subs.set(f, set);
        fresh.push(f);
      }
      set.add(h);
    }
    if (fresh.length) {
      let refused: string[];
      try {
        // Deliveries to this client at QoS 0. Its session is clean, so a QoS 1 delivery in flight
        // when the connection drops is discarded by the broker as well: QoS 1 would buy nothing
        // here but a PUBACK and the broker's in-flight bookkeeping per message. Publishes stay
        // QoS 1 (#send): mqtt.js re-sends an unacknowledged one after a reconnect.
        const granted = await this.#mqtt.subscribeAsync(fresh, { qos: 0 });
        refused = granted.filter((g) => g.qos === 128).map((g) => g.topic);
      } catch (err) {
        // mqtt.js rejects when the broker answers SUBACK 0x80 (failure).
        refused = fresh;
        this.#log.debug({ err }, 'subscribe failed');
      }
      if (refused.length) {
        for (const f of fresh) this.#subs.delete(f);
        throw new TuError('BUS_AUTH_REFUSED', `subscription refused by the broker ACL: ${refused.join(', ')}`);
      }
    }
    return async () => {
      const gone: string[] = [];
      for (const f of filters) {
        const set = this.#subs.get(f);
        if (!set) continue;
        set.delete(h);
        if (set.size === 0) {
          this.#subs.delete(f);
          gone.push(f);
        }
      }
      if (gone.length && !this.#closed) await this.#mqtt.unsubscribeAsync(gone).catch(() => undefined);
    };
  }

  #dispatch(topic: string, payload: Buffer): void {
    this.stats.received++;
    for (const [filter, handlers] of this.#subs) {
      if (filter !== topic && !topicMatches(filter, topic)) continue;
      for (const h of handlers) h(topic, payload);
    }
  }

  #run(fn: () => void | Promise<void>, topic: string): void {
    try {
      const r = fn();
      if (r && typeof r.then === 'function') {
        r.then(undefined, (err: unknown) => this.#handlerFailed(err, topic));
      }
    } catch (err) {
      this.#handlerFailed(err, topic);
    }
  }

  #handlerFailed(err: unknown, topic: string): void {
    this.stats.handlerErrors++;
    this.#log.error({ err, topic }, 'message handler failed');
  }

  #reject(topic: string, payload: Buffer, rejection: Rejection): void {
    this.stats.rejected++;
    this.stats.rejectedByCode[rejection.code] = (this.stats.rejectedByCode[rejection.code] ?? 0) + 1;
    this.#log.warn({ topic, code: rejection.code, reason: rejection.message, bytes: payload.length }, 'rejected inbound message');
    if (topic.includes('/sys/deadletter/') || this.#closed || this.#observer) return;
    const letter = {
      reason: rejection,
      topic: topic.slice(0, 512),
      receivedBy: { service: this.service, instanceId: this.instanceId },
      receivedAt: new Date().toISOString(),
      bytes: payload.length,
      payloadPreview: payload.subarray(0, DEAD_LETTER_PREVIEW_BYTES).toString('base64'),
    };
    this.#mqtt.publishAsync(topics.deadLetter(this.gatewayId, this.service), JSON.stringify(letter), { qos: 0 }).then(
      () => {
        this.stats.deadLettered++;
      },
      (err: unknown) => this.#log.warn({ err }, 'dead-letter publish failed'),
    );
  }

  async #announce(): Promise<void> {
    if (!this.#presence || !this.#ready || this.#closed) return;
    const topic = topics.presence(this.gatewayId, this.service, this.instanceId);
    await this.#mqtt.publishAsync(topic, JSON.stringify(this.#presence), { qos: 1, retain: true }).catch((err: unknown) => {
      this.#log.warn({ err }, 'presence announcement failed');
    });
  }
}
