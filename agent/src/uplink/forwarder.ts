import type { MqttClient } from 'mqtt';
import { gatewayStatusPayload, gatewayTopics, TuError, type AnyEvent, type EventType, type BusClient, type Clock, type ErrorCode, type Logger, type TimerHandle } from '@tu/shared';
import { retryDelay as reconnectDelay, type Backoff as ReconnectPolicy } from '@tu/shared';
import { TERMINAL_EVENT_TYPES, TerminalHandoff } from './handoff.js';
import type { EventEnricher } from './enrich.js';
import type { Outbox } from './outbox.js';
import { openRelayConnection, redactUrl, type RelayEndpoint } from './relay-connection.js';

export type UplinkState = 'connecting' | 'online' | 'offline';

export interface UplinkError {
  code: ErrorCode;
  message: string;
  at: string;
}

export interface ForwarderStats {
  connects: number;
  connectFailures: number;
  published: number;
  delivered: number;
  received: number;
  notQueued: number;
}

export interface ForwarderDeps {
  gatewayId: string;
  /** Observer client on the local bus (events only); the forwarder owns and closes it. */
  bus: BusClient;
  outbox: Outbox;
  /** Undefined when the endpoint could not be resolved (error kept in `configError`). */
  endpoint: RelayEndpoint | undefined;
  configError?: TuError;
  reconnect: ReconnectPolicy;
  inflight: number;
  clock: Clock;
  random: () => number;
  logger: Logger;
  /** Puts back what the local bus only references (thumbnail, embeddings: enrich.ts) before an event enters the outbox; absent: events go as they are. */
  enrich?: EventEnricher;
  /** How long the orchestrator waits for a terminal event to reach the outbox (default 30 s; then it stays open and is re-sent at the next start). */
  handoffTimeoutMs?: number;
}

const STATUS_ONLINE = gatewayStatusPayload(true);
const STATUS_OFFLINE = gatewayStatusPayload(false);

/**
 * Local bus → outbox → relay.
 * - Every validated event the observer receives is appended to the outbox (group commit).
 * - One MQTT connection to the relay at a time; committed rows are published from the
 *   outbox head in seq order, QoS 1, at most `inflight` unacknowledged; a PUBACK deletes
 *   the row. On disconnect everything unacknowledged is re-sent from the head after
 *   reconnecting (the relay deduplicates by event id).
 * - Reconnect: exponential backoff with jitter on the injected clock.
 * - Topics and status payloads come from the gateway contract (shared/src/gateway-contract.ts).
 * - Status `tu/{gw}/sys/status`: retained online on connect, retained offline as last will.
 * - Terminal events (analysis.completed / analysis.failed): once one is on disk here,
 *   terminalOnDisk(id) says so, and only then does the orchestrator close its record
 *   (until then a restart re-publishes it with the same id; see handoff.ts).
 */
export class Forwarder {
  readonly stats: ForwarderStats = { connects: 0, connectFailures: 0, published: 0, delivered: 0, received: 0, notQueued: 0 };
  readonly #d: ForwarderDeps;
  readonly #log: Logger;
  readonly #statusTopic: string;
  #state: UplinkState = 'connecting';
  #client: MqttClient | undefined;
  #gen = 0;
  #attempt = 0;
  #timer: TimerHandle | undefined;
  #cursor = 0;
  readonly #inflight = new Set<number>();
  #lastDeliveryAt: number | undefined;
  #lastError: UplinkError | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #offCommit: (() => void) | undefined;
  #stopped = false;
  readonly #handoff: TerminalHandoff;

  constructor(deps: ForwarderDeps) {
    this.#d = deps;
    this.#handoff = new TerminalHandoff({ clock: deps.clock, timeoutMs: deps.handoffTimeoutMs ?? 30_000, maxUnclaimed: 1024 });
    this.#log = deps.logger.child({ component: 'uplink' });
    this.#statusTopic = gatewayTopics.status(deps.gatewayId);
    if (deps.configError) this.#setError(deps.configError.code, deps.configError.message);
  }

  get state(): UplinkState {
    return this.#state;
  }
  get lastDeliveryAt(): number | undefined {
    return this.#lastDeliveryAt;
  }
  get lastError(): UplinkError | undefined {
    return this.#lastError;
  }
  get inflight(): number {
    return this.#inflight.size;
  }

  /**
   * Resolves true once terminal event `eventId` is committed to the outbox (from then on it
   * reaches the relay unless the outbox's bounds drop it, which is counted); false if the
   * outbox refused it or failed, it did not arrive within handoffTimeoutMs, or the uplink stopped.
   */
  terminalOnDisk(eventId: string): Promise<boolean> {
    return this.#handoff.onDisk(eventId);
  }

  /** Subscribes to all events on the local bus (first, so nothing published after start is missed), then connects to the relay. */
  async start(): Promise<void> {
    this.#offCommit = this.#d.outbox.onCommit(() => this.#pump());
    this.#unsubscribe = await this.#d.bus.onEvents('all', (e) => this.#onEvent(e));
    if (this.#d.endpoint) this.#connect();
    else this.#state = 'offline';
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) this.#d.clock.clearTimeout(this.#timer);
    this.#handoff.close();
    this.#offCommit?.();
    await this.#unsubscribe?.().catch(() => undefined);
    await this.#d.bus.close();
    const c = this.#client;
    this.#client = undefined;
    this.#gen++;
    if (c?.connected) {
      // A clean disconnect suppresses the will: say offline ourselves (bounded wait).
      await withTimeout(c.publishAsync(this.#statusTopic, STATUS_OFFLINE, { qos: 1, retain: true }), 1000).catch(() => undefined);
      await withTimeout(c.endAsync(), 1000).catch(() => c.end(true));
    } else c?.end(true);
    this.#state = 'offline';
  }

  #onEvent(e: AnyEvent): void {
    this.stats.received++;
    const terminal = TERMINAL_EVENT_TYPES.has(e.type);
    // onEvents('all') delivers only validated events from tu/{gw}/evt/#; commands and sys never get here.
    let full = e;
    try {
      full = this.#d.enrich?.(e) ?? e;
    } catch (err) {
      this.#log.warn({ err, eventId: e.id }, 'event sent to the relay without its thumbnail/embedding: reading them failed');
    }
    const onDisk = this.#append(full);
    if (terminal) this.#handoff.record(e.id, onDisk);
  }

  /** Appends to the outbox; resolves true once committed, false when refused or failed (counted, logged). */
  #append(e: AnyEvent): Promise<boolean> {
    let r;
    try {
      r = this.#d.outbox.append(e, JSON.stringify(e));
    } catch (err) {
      this.stats.notQueued++;
      this.#log.error({ err, eventId: e.id }, 'event not queued for the relay');
      return Promise.resolve(false);
    }
    if (!r.accepted) {
      this.stats.notQueued++;
      return Promise.resolve(false);
    }
    return r.committed.then(
      () => true,
      (err: unknown) => {
        this.#log.error({ err, eventId: e.id }, 'event not persisted in the outbox');
        return false;
      },
    );
  }

  #connect(): void {
    if (this.#stopped || !this.#d.endpoint) return;
    this.#timer = undefined;
    const gen = ++this.#gen;
    this.#state = 'connecting';
    let client: MqttClient;
    try {
      client = openRelayConnection(this.#d.endpoint, { will: { topic: this.#statusTopic, payload: Buffer.from(STATUS_OFFLINE), qos: 1, retain: true } });
    } catch (err) {
      const e = err instanceof TuError ? err : new TuError('UPLINK_CONNECT_FAILED', (err as Error).message);
      this.#setError(e.code, e.message);
      return this.#scheduleReconnect(gen);
    }
    this.#client = client;
    let closed = false;
    client.on('connect', () => {
      if (gen !== this.#gen) return;
      this.stats.connects++;
      this.#attempt = 0;
      this.#state = 'online';
      if (this.#lastError) this.#log.info({ url: redactUrl(this.#d.endpoint!.url) }, 'uplink connected to the relay');
      else this.#log.debug({ url: redactUrl(this.#d.endpoint!.url) }, 'uplink connected to the relay');
      this.#lastError = undefined;
      this.#cursor = 0;
      this.#inflight.clear();
      client.publish(this.#statusTopic, STATUS_ONLINE, { qos: 1, retain: true }, () => undefined);
      this.#pump();
    });
    client.on('error', (err: Error & { code?: number | string }) => {
      if (gen !== this.#gen) return;
      const auth = err.code === 4 || err.code === 5 || err.code === 134 || err.code === 135;
      this.#setError(auth ? 'UPLINK_AUTH_REFUSED' : 'UPLINK_CONNECT_FAILED', `${redactUrl(this.#d.endpoint!.url)}: ${err.message}`);
      if (auth) client.end(true);
    });
    client.on('close', () => {
      if (closed) return;
      closed = true;
      client.removeAllListeners('connect');
      if (gen !== this.#gen || this.#stopped) return;
      if (this.#state === 'online') this.#log.warn({ inflight: this.#inflight.size, queueDepth: this.#d.outbox.stats.depth }, 'uplink lost the relay connection; reconnecting');
      else this.stats.connectFailures++;
      this.#inflight.clear();
      this.#client = undefined;
      client.end(true);
      this.#scheduleReconnect(gen);
    });
  }

  #scheduleReconnect(gen: number): void {
    if (this.#stopped || gen !== this.#gen || this.#timer) return;
    this.#state = 'offline';
    const delay = reconnectDelay(this.#attempt++, this.#d.reconnect, this.#d.random);
    this.#timer = this.#d.clock.setTimeout(() => this.#connect(), delay);
  }

  #pump(): void {
    const client = this.#client;
    if (this.#stopped || !client || this.#state !== 'online') return;
    const room = this.#d.inflight - this.#inflight.size;
    if (room <= 0) return;
    const gen = this.#gen;
    const rows = this.#d.outbox.peek(this.#cursor, room);
    for (const r of rows) {
      this.#cursor = r.seq;
      this.#inflight.add(r.seq);
      this.stats.published++;
      // The outbox holds only validated events (#onEvent), so its type is an event type.
      client.publish(gatewayTopics.event(this.#d.gatewayId, r.type as EventType), r.payload, { qos: 1 }, (err) => {
        if (gen !== this.#gen || err) return; // re-sent from the outbox after reconnecting
        this.#inflight.delete(r.seq);
        this.#d.outbox.ack(r.seq);
        this.stats.delivered++;
        this.#lastDeliveryAt = this.#d.clock.now();
        this.#pump();
      });
    }
  }

  #setError(code: ErrorCode, message: string): void {
    const repeat = this.#lastError?.code === code && this.#lastError.message === message;
    this.#lastError = { code, message, at: new Date(this.#d.clock.now()).toISOString() };
    if (code === 'UPLINK_AUTH_REFUSED' || code === 'UPLINK_CONFIG_INVALID') {
      if (!repeat) this.#log.error({ code }, `uplink: ${message}`);
    } else if (!repeat) this.#log.warn({ code }, `uplink: ${message}`);
  }
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout')), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
