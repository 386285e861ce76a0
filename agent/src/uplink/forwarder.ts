import type { MqttClient } from 'mqtt';
import { gatewayStatusPayload, gatewayTopics, parseRelayLimits, TuError, type AnyEvent, type EventType, type BusClient, type Clock, type ErrorCode, type Logger, type TimerHandle } from '@tu/shared';
import { retryDelay as reconnectDelay, type Backoff as ReconnectPolicy } from '@tu/shared';
import { TERMINAL_EVENT_TYPES, TerminalHandoff } from './handoff.js';
import type { EventEnricher } from './enrich.js';
import { EventSizeLimit } from './event-limit.js';
import type { Outbox } from './outbox.js';
import type { OutboxRow } from './outbox-db.js';
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
  /** Events set aside since start instead of sent, as too large for the relay (event-limit.ts). */
  setAside: number;
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
  /** uplink.maxEventBytes: the largest event sent until the relay says its own limit (event-limit.ts). */
  maxEventBytes: number;
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
 * - An event larger than the relay takes (event-limit.ts: uplink.maxEventBytes, and the limit the
 *   relay states on `tu/{gw}/sys/limits` after each CONNACK) is set aside in the outbox instead of
 *   sent, and the next one goes; when the relay states a larger limit, the events it now allows
 *   are queued again.
 * - Status `tu/{gw}/sys/status`: retained online on connect, retained offline as last will.
 * - Terminal events (analysis.completed / analysis.failed): once one is on disk here,
 *   terminalOnDisk(id) says so, and only then does the orchestrator close its record
 *   (until then a restart re-publishes it with the same id; see handoff.ts).
 */
export class Forwarder {
  readonly stats: ForwarderStats = { connects: 0, connectFailures: 0, published: 0, delivered: 0, received: 0, notQueued: 0, setAside: 0 };
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
  /** Since when (clock ms) the relay has not been connected: the start, or the lost connection; undefined while online. */
  #disconnectedAt: number | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #offCommit: (() => void) | undefined;
  #stopped = false;
  readonly #handoff: TerminalHandoff;
  readonly #limit: EventSizeLimit;
  readonly #limitsTopic: string;
  /** Set-aside count at the last warning: one when the limit in force changes, then every 1000th (all are counted). */
  #setAsideWarned: number | undefined;

  constructor(deps: ForwarderDeps) {
    this.#d = deps;
    this.#disconnectedAt = deps.clock.now();
    this.#handoff = new TerminalHandoff({ clock: deps.clock, timeoutMs: deps.handoffTimeoutMs ?? 30_000, maxUnclaimed: 1024 });
    this.#log = deps.logger.child({ component: 'uplink' });
    this.#statusTopic = gatewayTopics.status(deps.gatewayId);
    this.#limitsTopic = gatewayTopics.limits(deps.gatewayId);
    this.#limit = new EventSizeLimit(deps.maxEventBytes);
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
  /**
   * How long the relay has not been connected (ms; undefined while online): the state alone
   * cycles connecting/offline on every attempt, so it cannot tell a first connect from a long outage.
   */
  get disconnectedMs(): number | undefined {
    return this.#disconnectedAt === undefined ? undefined : Math.max(0, this.#d.clock.now() - this.#disconnectedAt);
  }
  get inflight(): number {
    return this.#inflight.size;
  }
  /** The largest event sent now, and what the relay said it takes (undefined until it has). */
  get maxEventBytes(): { inForce: number; relay: number | undefined } {
    return { inForce: this.#limit.bytes, relay: this.#limit.relay };
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
    // Set aside under a smaller uplink.maxEventBytes before this start: those the configured limit allows now go again.
    this.#d.outbox.requeue((e) => this.#limit.fits(e));
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
      this.#disconnectedAt = undefined;
      if (this.#lastError) this.#log.info({ url: redactUrl(this.#d.endpoint!.url) }, 'uplink connected to the relay');
      else this.#log.debug({ url: redactUrl(this.#d.endpoint!.url) }, 'uplink connected to the relay');
      this.#lastError = undefined;
      this.#cursor = 0;
      this.#inflight.clear();
      client.publish(this.#statusTopic, STATUS_ONLINE, { qos: 1, retain: true }, () => undefined);
      this.#pump();
    });
    // The one message the relay sends unasked (the gateway subscribes to nothing): its limits.
    client.on('message', (topic: string, payload: Buffer) => {
      if (gen !== this.#gen) return;
      if (topic === this.#limitsTopic) this.#relayLimits(payload);
      else this.#log.debug({ topic: topic.slice(0, 200) }, 'uplink: ignored a message from the relay');
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
      this.#disconnectedAt ??= this.#d.clock.now();
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

  #relayLimits(payload: Buffer): void {
    const l = parseRelayLimits(payload);
    if (!l) {
      // Bad input from the network: ignored (the configured limit stays in force), never a crash.
      this.#log.warn({ payload: payload.toString('utf8', 0, 200) }, 'uplink: the relay sent limits this gateway cannot read; ignored');
      return;
    }
    if (!this.#limit.relaySaid(l.maxPayloadBytes)) return;
    this.#setAsideWarned = undefined;
    this.#log.info({ relayMaxPayloadBytes: l.maxPayloadBytes, maxEventBytes: this.#d.maxEventBytes, inForce: this.#limit.bytes }, 'uplink: the relay stated the largest event it takes');
    // A larger limit lets events set aside earlier go; a smaller one sets the next too-large row aside in #pump.
    this.#d.outbox.requeue((e) => this.#limit.fits(e));
    this.#pump();
  }

  /** Sets row `r` aside instead of sending it when it is over the limit in force (event-limit.ts says why). */
  #tooLarge(r: OutboxRow): boolean {
    const why = this.#limit.check(r.bytes);
    if (!why) return false;
    if (!this.#d.outbox.setAside(r, why)) return true;
    const n = ++this.stats.setAside;
    if (this.#setAsideWarned === undefined || n - this.#setAsideWarned >= 1000) {
      this.#setAsideWarned = n;
      this.#log.warn({ code: 'UPLINK_EVENT_TOO_LARGE', eventId: r.id, type: r.type, bytes: r.bytes, limitBytes: why.limitBytes, limitBy: why.limitBy, setAsideSinceStart: n }, `uplink: event set aside, not sent: ${why.reason}`);
    }
    return true;
  }

  #pump(): void {
    const client = this.#client;
    if (this.#stopped || !client || this.#state !== 'online') return;
    const gen = this.#gen;
    // Until the window is full or nothing is left: a row set aside sends nothing, so the next takes its place.
    for (let room = this.#d.inflight - this.#inflight.size; room > 0; room = this.#d.inflight - this.#inflight.size) {
      const rows = this.#d.outbox.peek(this.#cursor, room);
      if (!rows.length) return;
      for (const r of rows) this.#send(client, gen, r);
    }
  }

  #send(client: MqttClient, gen: number, r: OutboxRow): void {
    this.#cursor = r.seq;
    if (this.#tooLarge(r)) return;
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
