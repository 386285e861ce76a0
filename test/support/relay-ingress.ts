import net from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { checkGatewayPublish } from '@tu/shared';

/**
 * A real MQTT broker (aedes) enforcing the uplink ↔ relay contract, standing in for the
 * relay's gateway ingress: username = gatewayId + its secret; publish only
 * tu/{own}/evt/{type} (QoS 1, not retained) and tu/{own}/sys/status (retained);
 * no subscriptions. Received events survive stop()/start() (the "relay database").
 */
export interface Received {
  /** Every event publish in arrival order (re-sends included). */
  all: { id: string; type: string; subject: string; topic: string; data: unknown }[];
  /** Distinct ids in first-arrival order. */
  firstSeen: string[];
  duplicates: number;
  status: string[];
  refusedConnects: number;
  refusedPublishes: number;
}

export class TestRelay {
  readonly received: Received = { all: [], firstSeen: [], duplicates: 0, status: [], refusedConnects: 0, refusedPublishes: 0 };
  readonly #seen = new Set<string>();
  readonly #secrets: Map<string, string>;
  #aedes: Aedes | undefined;
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();
  port = 0;

  constructor(secrets: Record<string, string>) {
    this.#secrets = new Map(Object.entries(secrets));
  }

  get up(): boolean {
    return this.#server !== undefined;
  }

  async start(port = this.port): Promise<number> {
    const users = new WeakMap<Client, string>();
    const aedes = await Aedes.createBroker({
      authenticate: (_client, username, password, done) => {
        const ok = username !== undefined && this.#secrets.get(username) === password?.toString();
        if (!ok) {
          this.received.refusedConnects++;
          const e = new Error('bad username or password') as AuthenticateError;
          e.returnCode = 4;
          return done(e, false);
        }
        users.set(_client, username);
        done(null, true);
      },
      authorizePublish: (client, packet, done) => {
        const gw = client ? users.get(client) : undefined;
        // The relay's rule (shared/src/gateway-contract.ts), plus what this uplink must do: QoS 1, and its status retained.
        const check = client !== null && gw !== undefined ? checkGatewayPublish(gw, packet.topic, packet.retain) : undefined;
        const ok = check?.ok === true && packet.qos === 1 && (check.kind === 'event' || packet.retain);
        if (!ok) {
          this.received.refusedPublishes++;
          return done(new Error('not allowed'));
        }
        done(null);
      },
      authorizeSubscribe: (_client, _sub, done) => done(null, null),
    });
    aedes.on('publish', (packet, client) => {
      if (!client) return;
      const p = packet.topic.split('/');
      if (p[2] === 'sys') {
        this.received.status.push(packet.payload.toString());
        return;
      }
      const ev = JSON.parse(packet.payload.toString()) as { id: string; type: string; subject: string; data: unknown };
      this.received.all.push({ id: ev.id, type: ev.type, subject: ev.subject, topic: packet.topic, data: ev.data });
      if (this.#seen.has(ev.id)) this.received.duplicates++;
      else {
        this.#seen.add(ev.id);
        this.received.firstSeen.push(ev.id);
      }
    });
    const server = net.createServer({ noDelay: true }, (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
      aedes.handle(s);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.#aedes = aedes;
    this.#server = server;
    return this.port;
  }

  /** Goes down hard: sockets destroyed, nothing acknowledged after this. */
  async stop(): Promise<void> {
    const server = this.#server;
    const aedes = this.#aedes;
    this.#server = undefined;
    this.#aedes = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
    if (aedes) await new Promise<void>((r) => aedes.close(() => r()));
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }
}

