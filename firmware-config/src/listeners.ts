import type { z } from 'zod';

/**
 * The sockets the agent listens on, and the rule that no two of them take the same address.
 * The agent opens two: the MQTT broker (broker.host/port, agent/src/broker/broker.ts) and the
 * HTTP server (http.host/port, agent/src/agent.ts), which also serves the event feed's WebSocket
 * and /metrics, so they have no port of their own. With http.port equal to broker.port the
 * config loaded and the agent then exited 1 with a bare `listen EADDRINUSE`, naming no field.
 */
interface Listener {
  /** The config object holding `host` and `port`. */
  at: string;
  host: string;
  port: number;
}

/** Addresses that take a port on every interface: `::` also takes IPv4's, as Node listens dual-stack. */
const WILDCARDS = new Set(['0.0.0.0', '::', '0:0:0:0:0:0:0:0']);
const normal = (host: string) => host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');

/**
 * Whether two listeners would take the same address: the same port (0 asks the system for a free
 * one, so never collides) on the same host, or on any host when either is a wildcard. Host names
 * are compared as written: resolving them here would make loading the config depend on DNS.
 */
const overlap = (a: Listener, b: Listener): boolean =>
  a.port !== 0 && a.port === b.port && (normal(a.host) === normal(b.host) || WILDCARDS.has(normal(a.host)) || WILDCARDS.has(normal(b.host)));

/** A superRefine of the whole agent config: one issue per pair that overlaps, on the later one's port, naming both. */
export function listenersApart(c: { broker: { host: string; port: number }; http: { host: string; port: number } }, ctx: z.RefinementCtx): void {
  const listeners: Listener[] = [
    { at: 'broker', ...c.broker },
    { at: 'http', ...c.http },
  ];
  listeners.forEach((b, i) => {
    for (const a of listeners.slice(0, i)) {
      if (!overlap(a, b)) continue;
      ctx.addIssue({
        code: 'custom',
        path: [b.at, 'port'],
        message: `${b.at}.port ${b.port} (${b.at}.host ${b.host}) is also ${a.at}.port (${a.at}.host ${a.host}): both servers cannot listen there; give one of them another port`,
      });
    }
  });
}
