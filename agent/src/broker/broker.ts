import net from 'node:net';
import type { Duplex } from 'node:stream';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { defaultLoginThrottleLimits, duplexPair, LoginThrottle, MqttAdmission, systemClock, type AdmissionLimits, type AdmissionStats, type Clock, type Logger, type LoginThrottleLimits } from '@tu/shared';
import { aclFor, mayPublish, maySubscribe, type Acl } from './acl.js';
import { ownsClientId, principalFor, verifyPassword } from './credentials.js';
import { LoginConnections } from './login-connections.js';

export interface BrokerOptions {
  gatewayId: string;
  secret: string;
  logger: Logger;
  /** Listen on TCP as well as in-process; port 0 picks a free port. */
  tcp?: { host: string; port: number };
  maxPayloadBytes: number;
  /** Limits on TCP clients before the broker parses their packets (default: admissionLimits). */
  admission?: AdmissionLimits;
  /** Failed-login limits (default: defaultLoginThrottleLimits). */
  logins?: LoginThrottleLimits;
  clock?: Clock;
}

/**
 * What a TCP client of the gateway bus may do before it has authenticated. Legitimate clients
 * are the agent's own service processes on this device, so the limits are tight: a CONNECT of
 * ours is under 1 KB, and a few service processes (re)connect at a time. The packet limit is
 * the payload limit plus room for the topic and headers (our topics are under 200 bytes).
 */
export const admissionLimits = (maxPayloadBytes: number): AdmissionLimits => ({
  maxConnectBytes: 16 * 1024,
  maxPacketBytes: maxPayloadBytes + 1024,
  maxPendingConnects: 64,
  connectBurstPerAddress: 30,
  connectsPerSecondPerAddress: 5,
});

export interface BrokerStats {
  clients: number;
  refusedConnects: number;
  refusedPublishes: number;
  refusedSubscribes: number;
  /** TCP connections cut before authentication (packet size, connect rate, pending connects). */
  admission: AdmissionStats;
  /** Failed logins, and logins refused unchecked after too many failures. */
  logins: LoginThrottle['stats'];
}

export interface Broker {
  readonly aedes: Aedes;
  /** The TCP address, when listening. */
  readonly address?: { host: string; port: number };
  readonly stats: BrokerStats;
  /** A new in-process connection to the broker (a duplex pair; one end is handled by aedes). */
  connectInProcess(): Duplex;
  close(): Promise<void>;
}

const CLIENT_ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * Distinct filters one client may hold at once. Each costs the broker memory (aedes keeps it per
 * client and in its topic tree), and the ACL alone lets an observer name as many filters under
 * `tu/{gw}/evt/#` as it likes: 200,000 of them took 195 MB (test/broker-acl.test.ts). The
 * agent's own clients hold at most one per event and command type of the catalogue plus
 * presence (shared/src/catalog.ts: under 20).
 */
export const MAX_SUBSCRIPTIONS_PER_CLIENT = 64;

function authError(message: string, returnCode: 2 | 3 | 4 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/**
 * The agent's local bus: aedes with authentication for every client and topic ACLs
 * derived from the message catalogue. Listens on TCP (TCP_NODELAY) and in-process.
 */
export async function startBroker(opts: BrokerOptions): Promise<Broker> {
  const log = opts.logger.child({ component: 'broker' });
  const acls = new WeakMap<Client, Acl>();
  const held = new WeakMap<Client, Set<string>>();
  const keepalives = new WeakMap<Client, number>();
  const connections = new LoginConnections();
  const clock = opts.clock ?? systemClock;
  const admission = new MqttAdmission(opts.admission ?? admissionLimits(opts.maxPayloadBytes), {
    now: () => clock.now(),
    onRefused: (why, address) => log.warn({ why, address }, 'cut a bus connection before authentication'),
  });
  const logins = new LoginThrottle(opts.logins ?? defaultLoginThrottleLimits, () => clock.now());
  const stats: BrokerStats = { clients: 0, refusedConnects: 0, refusedPublishes: 0, refusedSubscribes: 0, admission: admission.stats, logins: logins.stats };

  const aedes = await Aedes.createBroker({
    id: `tu-${opts.gatewayId}`,
    // authenticate() does not see the CONNECT packet; its keepalive is kept here for it.
    preConnect(client, packet, done) {
      if (packet.keepalive !== undefined) keepalives.set(client, packet.keepalive);
      done(null, true);
    },
    authenticate(client, username, password, done) {
      const address = admission.addressOf(client.conn);
      if (!logins.attempt(address, username ?? '')) {
        stats.refusedConnects++;
        log.warn({ username: username?.slice(0, 128), address }, 'refused connection: too many failed logins; try again later');
        return done(authError('too many failed logins', 5), false);
      }
      const principal = username ? principalFor(username) : undefined;
      if (!principal || !verifyPassword(opts.secret, username!, password) || !CLIENT_ID_RE.test(client.id)) {
        stats.refusedConnects++;
        log.warn({ clientId: client.id?.slice(0, 128), username: username?.slice(0, 128) }, 'refused connection: bad credentials or client id');
        return done(authError('bad username or password', 4), false);
      }
      logins.succeeded(address, username!);
      // A valid login may still not take over another principal's client id (MQTT would
      // disconnect the holder): refuse it as "identifier rejected" (CONNACK 2).
      if (!ownsClientId(username!, client.id)) {
        stats.refusedConnects++;
        log.warn({ clientId: client.id.slice(0, 128), username }, `refused connection: client id not owned by this login (use "${username}" or "${username}:<suffix>")`);
        return done(authError('client id not owned by this login', 2), false);
      }
      // A persistent session (clean session 0) makes aedes keep, in memory and without bound, every
      // QoS 1 message for it while its client is away: one tool left subscribed to the events with
      // `mosquitto_sub -c` grew the agent by 200 MB per 1,000 events of 200 KB (test/broker-acl.test.ts).
      // The agent's own clients all use clean sessions (shared/src/bus/client.ts), so none is kept.
      if (!client.clean) {
        stats.refusedConnects++;
        log.warn({ clientId: client.id.slice(0, 128), username }, 'refused connection: persistent sessions are not kept on this bus; connect with clean session (mosquitto_sub without -c)');
        return done(authError('persistent sessions are not kept on this bus; connect with clean session', 5), false);
      }
      // Connections per login and their keepalive are bounded (login-connections.ts says why).
      const refusal = connections.admit(username!, client, keepalives.get(client));
      if (refusal) {
        stats.refusedConnects++;
        log.warn({ clientId: client.id.slice(0, 128), username, reason: refusal.reason }, `refused connection: ${refusal.reason}`);
        return done(authError(refusal.reason, refusal.returnCode), false);
      }
      acls.set(client, aclFor(principal, opts.gatewayId, client.id));
      done(null, true);
    },
    authorizePublish(client, packet, done) {
      if (!client) return done(null); // broker-internal
      const acl = acls.get(client);
      const presenceTopic = packet.topic.includes('/sys/presence/');
      let reason: string | undefined;
      if (!acl || !mayPublish(acl, packet.topic)) reason = 'topic not allowed for this client';
      else if (packet.retain && !presenceTopic) reason = 'only presence may be retained';
      else if (packet.payload.length > opts.maxPayloadBytes) reason = `payload ${packet.payload.length} bytes over ${opts.maxPayloadBytes}`;
      if (reason) {
        stats.refusedPublishes++;
        log.warn({ clientId: client.id, topic: packet.topic.slice(0, 200), reason }, 'refused publish; disconnecting client');
        return done(new Error(reason));
      }
      done(null);
    },
    authorizeSubscribe(client, sub, done) {
      const acl = acls.get(client);
      if (!acl || !maySubscribe(acl, sub.topic)) {
        stats.refusedSubscribes++;
        log.warn({ clientId: client.id, filter: sub.topic.slice(0, 200) }, 'refused subscription');
        return done(null, null);
      }
      let filters = held.get(client);
      if (!filters) held.set(client, (filters = new Set()));
      if (!filters.has(sub.topic) && filters.size >= MAX_SUBSCRIPTIONS_PER_CLIENT) {
        stats.refusedSubscribes++;
        log.warn({ clientId: client.id, filter: sub.topic.slice(0, 200), held: filters.size }, `refused subscription: a client may hold ${MAX_SUBSCRIPTIONS_PER_CLIENT} filters at once; unsubscribe some, or use one wildcard filter`);
        return done(null, null);
      }
      filters.add(sub.topic);
      done(null, sub);
    },
  });
  aedes.on('unsubscribe', (filters, client) => {
    const mine = held.get(client);
    for (const f of filters) mine?.delete(f);
  });
  aedes.on('client', () => stats.clients++);
  aedes.on('clientDisconnect', () => stats.clients--);
  aedes.on('clientError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'client error'));

  let server: net.Server | undefined;
  let address: { host: string; port: number } | undefined;
  if (opts.tcp) {
    server = net.createServer({ noDelay: true }, (socket) => {
      const conn = admission.admit(socket, socket.remoteAddress);
      if (conn) aedes.handle(conn);
    });
    const srv = server;
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(opts.tcp!.port, opts.tcp!.host, () => {
        srv.off('error', reject);
        resolve();
      });
    });
    const a = srv.address() as net.AddressInfo;
    address = { host: opts.tcp.host, port: a.port };
    log.info({ host: opts.tcp.host, port: a.port }, 'MQTT broker listening');
  }

  return {
    aedes,
    address,
    stats,
    connectInProcess() {
      const [clientSide, brokerSide] = duplexPair();
      aedes.handle(brokerSide);
      return clientSide;
    },
    async close() {
      // Stop accepting first, then disconnect every client, then wait for the server.
      const closed = server ? new Promise<void>((resolve) => server!.close(() => resolve())) : Promise.resolve();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await closed;
    },
  };
}
