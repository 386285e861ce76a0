import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * Dashboard clients: graphql-ws subscriptions to `analysisEvents(gatewayId)` (relay/README.md),
 * each watching one gateway, spread over the relay instances, so every event they receive has
 * crossed one instance's ingest and the Redis fan-out. Latency = arrival − the event's `time`
 * (stamped by the simulator when first sent; same machine, same clock). A client whose instance
 * dies reconnects to the next instance (bounded retries).
 */
export interface SubscriberStats {
  received: number;
  duplicates: number;
  reconnects: number;
  errors: number;
}

interface Sample {
  at: number;
  ms: number;
}

export class Subscribers {
  readonly latencies: Sample[] = [];
  readonly stats: SubscriberStats = { received: 0, duplicates: 0, reconnects: 0, errors: 0 };
  #clients: Client[] = [];
  #active = 0;

  constructor(
    private readonly opts: { httpUrls: string[]; token: string; watch: string[]; now?: () => number },
  ) {}

  get active(): number {
    return this.#active;
  }

  /** Opens one subscription per watched gateway; resolves once all are acknowledged or after maxMs. */
  async start(maxMs: number): Promise<void> {
    const now = this.opts.now ?? Date.now;
    this.opts.watch.forEach((gw, i) => {
      let target = i % this.opts.httpUrls.length;
      let connects = 0;
      const seen = new Set<string>();
      const client = createClient({
        // A new connection after a drop goes to the next instance.
        url: () => `${this.opts.httpUrls[(target = connects++ === 0 ? target : (target + 1) % this.opts.httpUrls.length)]!.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${this.opts.token}` },
        retryAttempts: 20,
        retryWait: async (n) => new Promise((r) => setTimeout(r, Math.min(5000, 300 * 2 ** n) * (0.5 + Math.random()))),
        shouldRetry: () => true,
        on: {
          connected: () => {
            this.#active++;
            if (connects > 1) this.stats.reconnects++;
          },
          closed: () => {
            if (this.#active > 0) this.#active--;
          },
        },
      });
      client.subscribe<{ analysisEvents: { id: string; time: string } }>(
        { query: 'subscription ($gw: ID) { analysisEvents(gatewayId: $gw) { id time } }', variables: { gw } },
        {
          next: (v) => {
            const e = v.data?.analysisEvents;
            if (!e) return void this.stats.errors++;
            const t = now();
            if (seen.has(e.id)) this.stats.duplicates++;
            else seen.add(e.id);
            this.stats.received++;
            this.latencies.push({ at: t, ms: t - Date.parse(e.time) });
          },
          error: () => void this.stats.errors++,
          complete: () => undefined,
        },
      );
      this.#clients.push(client);
    });
    const t0 = Date.now();
    while (this.#active < this.opts.watch.length && Date.now() - t0 < maxMs) await new Promise((r) => setTimeout(r, 100));
  }

  async close(): Promise<void> {
    await Promise.all(this.#clients.map((c) => c.dispose()));
  }
}
