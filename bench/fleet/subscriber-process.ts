/**
 * The dashboard clients' own process (bench/fleet/subscribers.ts starts it): graphql-ws
 * connections spread over the relay instances, each with a subscription to
 * `analysisEvents(gatewayId)` (relay/README.md) per gateway it watches. Arrival times are taken here, away from the simulator of
 * 10,000 gateways: when a relay dies its gateways all reconnect inside the simulator's process,
 * which then stalls for up to 0.7 s, and a subscriber timed in that process counted the stall as
 * the relays' latency. A client whose instance dies reconnects to the next instance (bounded retries).
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { toSubscribers, type FromSubscribers, type SubscriberStats } from './subscriber-messages.js';

const clients: Client[] = [];
const stats: SubscriberStats = { received: 0, duplicates: 0, reconnects: 0, errors: 0, active: 0 };
/** Samples not yet reported: [arrival ms, arrival − the event's time]. */
let samples: [number, number][] = [];

const send = (m: FromSubscribers): void => void process.send?.(m);
const report = (type: FromSubscribers['type']): void => {
  send({ type, samples, stats: { ...stats } });
  samples = [];
};

function start(httpUrls: string[], token: string, watch: string[][]): void {
  watch.forEach((gateways, i) => {
    let target = i % httpUrls.length;
    let connects = 0;
    const seen = new Set<string>();
    const client = createClient({
      // A new connection after a drop goes to the next instance.
      url: () => `${httpUrls[(target = connects++ === 0 ? target : (target + 1) % httpUrls.length)]!.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 20,
      retryWait: async (n) => new Promise((r) => setTimeout(r, Math.min(5000, 300 * 2 ** n) * (0.5 + Math.random()))),
      shouldRetry: () => true,
      on: {
        connected: () => {
          stats.active++;
          if (connects > 1) stats.reconnects++;
        },
        closed: () => {
          if (stats.active > 0) stats.active--;
        },
      },
    });
    // One subscription per watched gateway, all over this subscriber's one connection.
    for (const gw of gateways)
      client.subscribe<{ analysisEvents: { id: string; time: string } }>(
        { query: 'subscription ($gw: ID) { analysisEvents(gatewayId: $gw) { id time } }', variables: { gw } },
        {
          next: (v) => {
            const e = v.data?.analysisEvents;
            if (!e) return void stats.errors++;
            const t = Date.now();
            if (seen.has(e.id)) stats.duplicates++;
            else seen.add(e.id);
            stats.received++;
            samples.push([t, t - Date.parse(e.time)]);
          },
          error: () => void stats.errors++,
          complete: () => undefined,
        },
      );
    clients.push(client);
  });
}

// Reports every 100 ms; unref'd so that only the parent's "close" (or its death) ends this process.
setInterval(() => report('report'), 100).unref();
process.on('disconnect', () => process.exit(0));
process.on('message', (raw) => {
  const m = toSubscribers.safeParse(raw);
  if (!m.success) return void stats.errors++;
  if (m.data.type === 'start') start(m.data.httpUrls, m.data.token, m.data.watch);
  else if (m.data.type === 'report') report('answer');
  else
    void Promise.all(clients.map((c) => c.dispose())).then(() => {
      report('closed');
      process.disconnect();
    });
});
