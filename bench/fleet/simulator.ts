import net from 'node:net';
import { MqttClient } from 'mqtt';
import { uplinkSchema } from '@tu/firmware-config';
import { gatewayStatusPayload, gatewayTopics, retryDelay } from '@tu/shared';
import { analysisEvents, EVENTS_PER_ANALYSIS, type Outgoing } from './analysis.js';
import type { FleetGateway } from './registry.js';

/**
 * The simulated fleet: one real MQTT connection per gateway with its own login, each keeping an
 * outbox like the agent's uplink (agent/src/uplink/outbox.ts): an event leaves the outbox only
 * when acknowledged (PUBACK = stored by the relay), and everything unacknowledged is sent again,
 * same id, after a reconnection. Every loop here is bounded in count and time.
 */
export interface SimOptions {
  gateways: FleetGateway[];
  /** Where gateways connect; gateway i starts at urls[i % n] and moves to the next URL when its connection drops. */
  urls: string[];
  /** Connections opened at once while the fleet comes up (so the broker is not stormed). */
  waveSize: number;
  /** Unacknowledged events a gateway holds at most; beyond that it skips its turn (back-pressure). */
  maxPendingPerGateway: number;
  now?: () => number;
}

/** The agent's own reconnect policy: its defaults (firmware-config uplink.reconnect), shared/src/retry-policy.ts. */
const RECONNECT = uplinkSchema.parse({}).reconnect;

class SimGateway {
  client: MqttClient | undefined;
  urlIndex: number;
  connected = false;
  /** Next event sequence number (0-based); everything below it was created. */
  nextSeq = 0;
  readonly pending = new Map<number, { topic: string; payload: string; sentAt: number }>();
  readonly acked: number[] = [];
  reconnects = 0;
  /** Retries since the last successful connection (the backoff's retry number, as agent/src/uplink/forwarder.ts counts). */
  #attempt = 0;
  #closing = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(
    readonly login: FleetGateway,
    index: number,
    private readonly sim: Simulator,
  ) {
    this.urlIndex = index % sim.opts.urls.length;
  }

  /** Connects once; resolves true on CONNACK, false on refusal or timeout (10 s). */
  connect(): Promise<boolean> {
    const u = new URL(this.sim.opts.urls[this.urlIndex]!);
    const c = new MqttClient(() => net.connect({ host: u.hostname, port: Number(u.port), noDelay: true }), {
      protocolVersion: 4,
      clientId: this.login.id,
      username: this.login.id,
      password: this.login.secret,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      keepalive: 60,
      will: { topic: gatewayTopics.status(this.login.id), payload: Buffer.from(gatewayStatusPayload(false)), qos: 1, retain: true },
    });
    this.client = c;
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), 11_000);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        resolve(ok);
      };
      c.once('connect', () => {
        this.connected = true;
        this.#attempt = 0;
        c.publish(gatewayTopics.status(this.login.id), gatewayStatusPayload(true), { qos: 1, retain: true });
        // The outbox again, same ids (at-least-once; the relay drops duplicates).
        for (const [seq, p] of [...this.pending].sort((a, b) => a[0] - b[0])) this.#send(c, seq, p.topic, p.payload);
        done(true);
      });
      c.once('close', () => {
        const was = this.connected;
        this.connected = false;
        done(false);
        if (this.client === c) this.#scheduleReconnect(was);
      });
      c.on('error', () => undefined);
    });
  }

  #scheduleReconnect(wasConnected: boolean): void {
    if (this.#closing || this.#retry || !this.sim.running) return;
    this.reconnects++;
    this.sim.stats.disconnects += wasConnected ? 1 : 0;
    // Another URL, picked at random among the others as a load balancer would spread them (the
    // node or instance may be gone; taking the next one sent all of a killed instance's gateways
    // to one survivor, which then held two thirds of the fleet). After the agent's jittered
    // backoff, so a whole node's gateways come back as real ones would.
    const n = this.sim.opts.urls.length;
    if (n > 1) this.urlIndex = (this.urlIndex + 1 + Math.floor(Math.random() * (n - 1))) % n;
    const wait = retryDelay(this.#attempt++, RECONNECT);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.reconnects > 200 || !this.sim.running) return;
      this.client?.end(true);
      void this.connect();
    }, wait);
  }

  #send(c: MqttClient, seq: number, topic: string, payload: string): void {
    c.publish(topic, payload, { qos: 1 }, (err) => {
      const p = this.pending.get(seq);
      if (err || !p) return;
      this.pending.delete(seq);
      this.sim.ackLatencies.push(this.sim.now() - p.sentAt);
      this.acked.push(seq);
      this.sim.stats.acked++;
      this.sim.ackTimes.push(this.sim.now());
    });
  }

  /** Starts one analysis: six events, stamped now, sent pipelined (QoS 1). */
  analyse(): boolean {
    if (!this.connected || !this.client || this.pending.size + EVENTS_PER_ANALYSIS > this.sim.opts.maxPendingPerGateway) return false;
    const out: Outgoing[] = analysisEvents(this.login.id, this.nextSeq, `m-${this.login.id}`);
    this.nextSeq += out.length;
    const sentAt = this.sim.now();
    const time = new Date(sentAt).toISOString();
    for (const o of out) {
      const payload = JSON.stringify({ ...o.envelope, time });
      this.pending.set(o.seq, { topic: o.topic, payload, sentAt });
      this.#send(this.client, o.seq, o.topic, payload);
    }
    this.sim.stats.sent += out.length;
    return true;
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#retry);
    const c = this.client;
    this.client = undefined;
    if (c) await c.endAsync(true).catch(() => undefined);
  }
}

export interface SimStats {
  sent: number;
  acked: number;
  skipped: number;
  disconnects: number;
  connectFailures: number;
}

export class Simulator {
  readonly gateways: SimGateway[];
  readonly stats: SimStats = { sent: 0, acked: 0, skipped: 0, disconnects: 0, connectFailures: 0 };
  /** When each acknowledgement arrived (ms, this process's clock): the sustained rate per second. */
  readonly ackTimes: number[] = [];
  /** First send → PUBACK (= stored, relay/README.md), ms, re-sends included in the wait. */
  readonly ackLatencies: number[] = [];
  running = true;
  readonly now: () => number;
  #cursor = 0;

  constructor(readonly opts: SimOptions) {
    this.now = opts.now ?? Date.now;
    this.gateways = opts.gateways.map((g, i) => new SimGateway(g, i, this));
  }

  get connected(): number {
    return this.gateways.filter((g) => g.connected).length;
  }

  /** Connects the fleet in waves of `waveSize`; a gateway refused in its wave retries by itself. Returns the time taken (ms). */
  async connectAll(deadlineMs: number): Promise<number> {
    const t0 = this.now();
    for (let i = 0; i < this.gateways.length && this.now() - t0 < deadlineMs; i += this.opts.waveSize) {
      const oks = await Promise.all(this.gateways.slice(i, i + this.opts.waveSize).map((g) => g.connect()));
      this.stats.connectFailures += oks.filter((o) => !o).length;
    }
    return this.now() - t0;
  }

  /**
   * Offers `eventsPerS` fleet-wide for `ms`: every 20 ms, the analyses due go to the next gateways
   * in turn (round robin) that are connected and below their outbox bound.
   */
  async offer(eventsPerS: number, ms: number, isStopped: () => boolean = () => false): Promise<void> {
    const t0 = this.now();
    let due = 0;
    let last = t0;
    while (this.now() - t0 < ms && !isStopped()) {
      await new Promise((r) => setTimeout(r, 20));
      const t = this.now();
      due += ((t - last) / 1000) * (eventsPerS / EVENTS_PER_ANALYSIS);
      last = t;
      // At most one lap of the fleet per tick: bounded even when every gateway is busy.
      for (let tries = 0; due >= 1 && tries < this.gateways.length; tries++) {
        const g = this.gateways[this.#cursor]!;
        this.#cursor = (this.#cursor + 1) % this.gateways.length;
        if (g.analyse()) due -= 1;
        else this.stats.skipped++;
      }
      // What could not be placed this tick is not carried over forever (offered = what was sent).
      due = Math.min(due, 1);
    }
  }

  get pending(): number {
    let n = 0;
    for (const g of this.gateways) n += g.pending.size;
    return n;
  }

  /** Waits (bounded) until every gateway's outbox is empty. */
  async drain(maxMs: number): Promise<boolean> {
    const t0 = this.now();
    while (this.pending > 0 && this.now() - t0 < maxMs) await new Promise((r) => setTimeout(r, 200));
    return this.pending === 0;
  }

  async close(): Promise<void> {
    this.running = false;
    for (let i = 0; i < this.gateways.length; i += 1000) await Promise.all(this.gateways.slice(i, i + 1000).map((g) => g.close()));
  }
}
