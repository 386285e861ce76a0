import type { EventEmitter } from 'node:events';
import mqemitterRedis from 'mqemitter-redis';
import { Redis } from 'ioredis';
import type { Logger } from '@tu/shared';
import type { Emitter } from './fanout.js';

/** Whether the fan-out through Redis works now (/api/v1/health `redis.fanout`). */
export interface FanoutHealth {
  /** Both connections (publish, subscribe) are connected to Redis. */
  up: boolean;
  /** The latest connection or publish error, with its time (ISO). */
  lastError?: string;
  lastErrorAt?: string;
}

/**
 * The subscription fan-out shared by the instances (config `redis`), mqemitter-redis over two
 * connections of our own. Every event goes out as a PUBLISH and comes back through the
 * subscription, for the subscribers of this instance too (mqemitter-redis delivers nothing
 * locally), so while Redis is away no subscriber anywhere gets new events; ingest and storage go
 * on (relay/src/ingest/pipeline.ts counts each failed publish, `tu_relay_fanout_errors_total`).
 *
 * mqemitter-redis hands every connection error of ioredis (one per reconnect attempt) to its
 * `state` EventEmitter, and a failed PUBLISH without a callback too: with no 'error' listener
 * there, a Redis outage ended the process ("Unhandled 'error' event"), and a relay could not
 * start while Redis was down. They are logged here, at most every 30 s (as redis-state.ts does).
 */
export class RedisFanout {
  readonly emitter: Emitter;
  readonly #pub: Redis;
  readonly #sub: Redis;
  #lastError: { message: string; at: number } | undefined;
  #lastErrorLog = -Infinity;

  constructor(private readonly opts: { url: string; logger: Logger; now: () => number }) {
    // Auto-pipelined: given a connection string, mqemitter-redis drops its own
    // enableAutoPipelining, and every accepted event was then one PUBLISH and one socket write
    // (about 4% of a relay's CPU at 3,000 events/s, bench/fleet.bench.ts); this way the events of
    // one event-loop turn go out in one write. A PUBLISH is given up after 1 s, as redis-state.ts
    // does, so an outage holds at most a second of events in ioredis's offline queue, not all of it.
    this.#pub = new Redis(opts.url, { enableAutoPipelining: true, commandTimeout: 1000, maxRetriesPerRequest: 1 });
    // A SUBSCRIBE made while Redis is away waits for the connection (no retry limit): one given up
    // would leave its subscriber subscribed here and never in Redis (ioredis re-subscribes on
    // reconnect only the channels Redis acknowledged).
    this.#sub = new Redis(opts.url, { maxRetriesPerRequest: null });
    const emitter = mqemitterRedis({ pubConn: this.#pub, subConn: this.#sub });
    // `state` is in mqemitter-redis.js, not in its typings.
    (emitter as unknown as { state: EventEmitter }).state.on('error', (err: Error) => this.failed(err));
    this.emitter = emitter as unknown as Emitter;
  }

  /**
   * Closes both connections. mqemitter-redis sends QUIT and waits for both to end; with Redis
   * away a QUIT queued behind a waiting SUBSCRIBE never goes out, so after 2 s they are cut.
   */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((r) => this.emitter.close(() => r())), new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    this.#pub.disconnect();
    this.#sub.disconnect();
  }

  /** A connection or publish error: kept for health, logged at most every 30 s. */
  failed(err: Error): void {
    const t = this.opts.now();
    this.#lastError = { message: err.message, at: t };
    if (t - this.#lastErrorLog < 30_000) return;
    this.#lastErrorLog = t;
    this.opts.logger.warn({ err: err.message }, 'redis fan-out unavailable: subscribers (on every instance) miss new events until it is back; ingest and storage go on');
  }

  health(): FanoutHealth {
    const e = this.#lastError;
    return { up: this.#pub.status === 'ready' && this.#sub.status === 'ready', ...(e ? { lastError: e.message, lastErrorAt: new Date(e.at).toISOString() } : {}) };
  }
}
