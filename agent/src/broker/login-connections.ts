/**
 * How many connections one login may hold on the gateway bus, and with what keepalive. Without
 * a cap a holder of one credential (`tu-agent credentials NAME`) could open connections under
 * `username:<suffix>` ids without end and keep them idle with keepalive 0: 3,000 of them held
 * 3,000 clients and +67 MB in a real agent (a script from several loopback addresses, past the
 * per-address connect rate), and every one a file descriptor the agent needs for its own files.
 * Test: test/broker-acl.test.ts.
 */
import type { Duplex } from 'node:stream';
import type { Client } from 'aedes';

/**
 * Connections one login may hold at once. Each service process holds one (agent/src/bus.ts
 * instanceIdFor) and several instances of a service may run (agent/README.md); a restarted
 * instance connects under a new id while its old connection may linger until its keepalive
 * expires (1.5 x KEEPALIVE_S.max at most). The agent's own logins hold one each (agent.ts:
 * orchestrator, intake, observer:ui, observer:uplink). 16 leaves room for 8 instances of a
 * service each restarted once in that window.
 */
export const MAX_CONNECTIONS_PER_LOGIN = 16;

/**
 * The keepalive a client may ask for, seconds: aedes cuts a client silent for 1.5 x its keepalive,
 * and with 0 never, so a peer gone without a FIN (a service process on another host) would hold
 * its connection, and its place under the cap, for ever. BusClient uses 30 (shared/src/bus/client.ts),
 * mqtt.js and mosquitto 60.
 */
export const KEEPALIVE_S = { min: 1, max: 300 } as const;

export type LoginRefusal = { returnCode: 3 | 5; reason: string };

/** The connections each login holds, from its authentication until its stream closes. */
export class LoginConnections {
  readonly #byLogin = new Map<string, Set<Client>>();

  constructor(readonly maxPerLogin = MAX_CONNECTIONS_PER_LOGIN) {}

  /** How many connections `username` holds now. */
  count(username: string): number {
    return this.#byLogin.get(username)?.size ?? 0;
  }

  /**
   * Admits an authenticated `client` of `username` asking for `keepalive` seconds, or says why not
   * (the CONNACK return code: 5 "not authorized" for a keepalive out of range, 3 "server
   * unavailable" at the cap, which frees up as its other connections close). A client taking
   * over a client id this login already holds does not count twice: aedes closes the old one.
   */
  admit(username: string, client: Client, keepalive: number | undefined): LoginRefusal | undefined {
    if (keepalive === undefined || keepalive < KEEPALIVE_S.min || keepalive > KEEPALIVE_S.max) {
      return { returnCode: 5, reason: `keepalive ${keepalive ?? '(none)'} s; this bus takes ${KEEPALIVE_S.min} to ${KEEPALIVE_S.max} s (mosquitto_sub -k 60)` };
    }
    let held = this.#byLogin.get(username);
    const others = held ? [...held].filter((c) => c.id !== client.id).length : 0;
    if (others >= this.maxPerLogin) {
      return { returnCode: 3, reason: `login ${username} holds ${others} connections, the most one login may hold (${this.maxPerLogin}); close some` };
    }
    const conn = client.conn as Duplex;
    // aedes destroys the stream whenever it closes a client (lib/client.js close), whatever the
    // cause: its 'close' gives the place back. Already destroyed, aedes drops the client unregistered.
    if (conn.destroyed) return undefined;
    if (!held) this.#byLogin.set(username, (held = new Set()));
    held.add(client);
    conn.once('close', () => {
      held.delete(client);
      if (held.size === 0 && this.#byLogin.get(username) === held) this.#byLogin.delete(username);
    });
    return undefined;
  }
}
