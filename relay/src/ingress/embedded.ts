import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { checkGatewayPublish, gatewayTopics, LoginThrottle, MqttAdmission, relayLimitsPayload, systemClock, type AdmissionLimits, type Clock, type Logger, type LoginThrottleLimits } from '@tu/shared';
import type { RelayConfig } from '../config.js';
import type { Ingest } from '../ingest/pipeline.js';
import type { Presence } from '../ingest/presence.js';
import { refreshRegistryEvery } from '../registry/refresh.js';
import type { GatewayInfo, Registry } from '../registry/registry.js';
import { ConnectPacer, type ConnectPacerLimits } from './connect-pacer.js';
import type { Ingress, IngressStats } from './types.js';

const CLIENT_ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

const authError = (message: string, returnCode: 2 | 4 | 5): AuthenticateError => Object.assign(new Error(message), { returnCode }) as AuthenticateError;

/**
 * The default gateway ingress: an embedded aedes broker (MQTT 3.1.1) on TCP or TLS (TCP_NODELAY) and,
 * through `handleStream`, MQTT over WebSocket. Username = gatewayId, password = gateway secret.
 * A gateway may publish only its own events and status and may subscribe to nothing
 * (shared/src/gateway-contract.ts); anything else is refused (publish: the client is disconnected), logged and counted.
 * An event's PUBACK is sent once the relay has stored it.
 * Right after its CONNACK a gateway is told the largest payload taken (`tu/{gw}/sys/limits`,
 * relayLimitsSchema in shared/src/gateway-contract.ts): a larger publish only closes the
 * connection, which the gateway could not tell from a network failure, so it would send the same
 * event again and again while every later one waited behind it.
 */
/** The ingress limits from config (ingress.limits): the packet limit is the payload limit plus room for topic and headers. */
export function ingressLimits(ingress: RelayConfig['ingress']): { admission: AdmissionLimits; logins: LoginThrottleLimits; pacing: ConnectPacerLimits } {
  const l = ingress.limits;
  return {
    admission: { maxConnectBytes: l.maxConnectBytes, maxPacketBytes: ingress.maxPayloadBytes + 1024, maxPendingConnects: l.maxPendingConnects, connectBurstPerAddress: l.connectBurstPerAddress, connectsPerSecondPerAddress: l.connectsPerSecondPerAddress },
    logins: { failuresPerAddress: { burst: l.failedLoginBurst, perSecond: l.failedLoginsPerSecond }, failuresPerUsername: { burst: l.failedLoginBurst, perSecond: l.failedLoginsPerSecond } },
    pacing: { burst: l.connectBurst, perSecond: l.connectsPerSecond, maxWaiting: l.maxWaitingConnects, maxWaitMs: l.maxConnectWaitMs },
  };
}

export async function startEmbeddedIngress(opts: {
  host: string;
  port: number;
  registry: Registry;
  ingest: Ingest;
  presence: Presence;
  logger: Logger;
  maxPayloadBytes: number;
  /** Limits before authentication (config ingress.limits). */
  limits: { admission: AdmissionLimits; logins: LoginThrottleLimits; pacing: ConnectPacerLimits };
  /** mqtts on the TCP port (config ingress.tls, read by relay/src/tls.ts). */
  tls?: { cert: Buffer; key: Buffer };
  /** How often open connections are checked against the registry (config ingress.credentialCheckMs). */
  credentialCheckMs?: number;
  clock?: Clock;
}): Promise<Ingress & { handleStream(stream: Duplex, remoteAddress?: string): void }> {
  const log = opts.logger.child({ component: 'ingress' });
  const clock = opts.clock ?? systemClock;
  /** The gateway each admitted stream logged in as: a packet cut after the login names it. */
  const gatewayOfStream = new WeakMap<object, string>();
  const admission = new MqttAdmission(opts.limits.admission, {
    now: () => clock.now(),
    onRefused: (why, address, stream) => {
      const gw = stream ? gatewayOfStream.get(stream) : undefined;
      // Logged in: an event over ingress.maxPayloadBytes (+ 1 KiB for topic and headers), cut before it is read.
      if (gw && why === 'packet-too-large') log.warn({ gatewayId: gw, address, why, maxPayloadBytes: opts.maxPayloadBytes }, 'cut a gateway connection: it sent a publish over ingress.maxPayloadBytes (the gateway was told the limit when it connected)');
      else log.warn({ why, address }, 'cut a gateway connection before authentication');
    },
  });
  const logins = new LoginThrottle(opts.limits.logins, () => clock.now());
  // Admitted connections wait their turn here before the broker reads them (connect-pacer.ts says why).
  const pacer = new ConnectPacer(opts.limits.pacing, {
    now: () => clock.now(),
    start: (conn) => aedes.handle(conn),
    onRefused: (why) => log.warn({ why, waiting: pacer.stats.waiting }, why === 'full' ? 'cut a new gateway connection: too many waiting their turn (ingress.limits.maxWaitingConnects)' : 'cut a gateway connection that waited its turn for ingress.limits.maxConnectWaitMs'),
  });
  const handle = (conn: Duplex, address: string | undefined) => {
    const guarded = admission.admit(conn, address);
    if (guarded) pacer.offer(guarded);
  };
  const gatewayOf = new WeakMap<Client, string>();
  /** The login each connection was admitted with (Registry.stillValid checks it later). */
  const loginOf = new WeakMap<Client, GatewayInfo>();
  const stats: IngressStats = {
    mode: 'embedded',
    connected: true,
    clients: 0,
    refusedConnects: 0,
    refusedPublishes: 0,
    refusedSubscribes: 0,
    admission: admission.stats,
    logins: logins.stats,
    closedRevoked: 0,
    get pacing() {
      return pacer.stats;
    },
  };

  const aedes = await Aedes.createBroker({
    id: 'tu-relay-ingress',
    authenticate(client, username, password, done) {
      const id = username ?? '';
      const secret = password?.toString('utf8') ?? '';
      const address = admission.addressOf(client.conn);
      const refuse = (why: string) => {
        stats.refusedConnects++;
        log.warn({ clientId: client.id?.slice(0, 128), username: id.slice(0, 64), address, why }, 'refused gateway connection');
        done(authError('bad username or password', 4), false);
      };
      // Too many failures from this address (or for this gateway from a failing address):
      // refused without checking the secret, so guessing costs the relay nothing.
      if (!logins.attempt(address, id)) {
        stats.refusedConnects++;
        log.warn({ username: id.slice(0, 64), address }, 'refused gateway connection: too many failed logins; try again later');
        return done(authError('too many failed logins', 5), false);
      }
      if (!id || !secret || !CLIENT_ID_RE.test(client.id ?? '')) return refuse('missing credentials or bad client id');
      opts.registry.authenticate(id, secret).then(
        (gw) => {
          if (!gw) return refuse('unknown gateway or wrong secret');
          logins.succeeded(address, id);
          // MQTT lets a connection with a taken client id kick the holder off: a gateway may
          // only use its own id, so another gateway cannot knock it offline (CONNACK 2).
          if (client.id !== gw.id) {
            stats.refusedConnects++;
            log.warn({ clientId: client.id.slice(0, 128), gatewayId: gw.id }, 'refused gateway connection: the client id must be the gateway id');
            return done(authError('client id must be the gateway id', 2), false);
          }
          gatewayOf.set(client, gw.id);
          gatewayOfStream.set(client.conn, gw.id);
          loginOf.set(client, gw);
          done(null, true);
        },
        (err: Error) => {
          logins.succeeded(address, id); // not the client's failure
          log.error({ err: err.message }, 'registry lookup failed');
          done(authError('server unavailable', 5), false);
        },
      );
    },
    authorizePublish(client, packet, done) {
      if (!client) return done(null); // broker-internal
      const gw = gatewayOf.get(client);
      const check = gw ? checkGatewayPublish(gw, packet.topic, packet.retain) : ({ ok: false, reason: 'not authenticated' } as const);
      if (!check.ok || packet.payload.length > opts.maxPayloadBytes) {
        stats.refusedPublishes++;
        const reason = check.ok ? `payload of ${packet.payload.length} bytes over ingress.maxPayloadBytes (${opts.maxPayloadBytes})` : check.reason;
        log.warn({ gatewayId: gw, clientId: client.id, topic: packet.topic.slice(0, 200), reason }, 'refused gateway publish; disconnecting');
        return done(new Error(reason));
      }
      if (check.kind === 'status') return done(null);
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      opts.ingest.handle(gw!, packet.topic, payload).then(
        () => done(null),
        (err: Error) => {
          log.error({ err: err.message, gatewayId: gw }, 'ingest failed');
          done(err);
        },
      );
    },
    authorizeSubscribe(client, sub, done) {
      stats.refusedSubscribes++;
      log.warn({ gatewayId: gatewayOf.get(client), filter: sub.topic.slice(0, 200) }, 'refused gateway subscription (gateways may subscribe to nothing)');
      done(null, null);
    },
  });
  // A gateway that reconnects while its stale connection lingers replaces it (same client id);
  // only the disconnect of its current connection takes it offline.
  const current = new Map<string, Client>();
  aedes.on('client', (client) => {
    const gw = gatewayOf.get(client);
    if (!gw) return;
    stats.clients++;
    current.set(gw, client);
    opts.presence.connected(gw);
  });
  // Right after the CONNACK (clientReady): the gateway publishes only once the CONNACK has reached
  // it, so the limit is written ahead of the close a too-large publish on this connection causes,
  // and the gateway reads it before that close (TCP keeps the order).
  const limits = Buffer.from(relayLimitsPayload({ maxPayloadBytes: opts.maxPayloadBytes }));
  aedes.on('clientReady', (client) => {
    const gw = gatewayOf.get(client);
    if (!gw) return;
    client.publish({ cmd: 'publish', topic: gatewayTopics.limits(gw), payload: limits, qos: 0, retain: false, dup: false }, () => undefined);
  });
  aedes.on('clientDisconnect', (client) => {
    const gw = gatewayOf.get(client);
    if (!gw) return;
    stats.clients--;
    if (current.get(gw) !== client) return;
    current.delete(gw);
    opts.presence.disconnected(gw);
  });
  aedes.on('clientError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'client error'));

  // A gateway revoked or given a new secret through another instance or the CLI is refused at
  // its next login (Registry.authenticate reads storage); its open connection is closed here,
  // within credentialCheckMs.
  const stopCredentialCheck = refreshRegistryEvery({
    registry: opts.registry,
    everyMs: opts.credentialCheckMs ?? 30_000,
    logger: log,
    afterRefresh: () => {
      for (const [gw, client] of current) {
        const login = loginOf.get(client);
        if (!login || opts.registry.stillValid(login)) continue;
        stats.closedRevoked = (stats.closedRevoked ?? 0) + 1;
        log.warn({ gatewayId: gw }, 'closed a gateway connection: the gateway was revoked or given a new secret since it logged in');
        client.close();
      }
    },
  });

  // TCP_NODELAY on every accepted socket (DESIGN §3), TLS or not (set again on the TLS socket,
  // which passes it to its TCP socket). Admission (shared/src/bus/admission.ts) applies once the
  // TLS handshake is done; a handshake gets 10 s, not Node's 120 s, so half-open ones cannot pile up.
  const server: net.Server = opts.tls
    ? tls.createServer({ cert: opts.tls.cert, key: opts.tls.key, noDelay: true, handshakeTimeout: 10_000 }, (socket) => {
        socket.setNoDelay(true);
        handle(socket, socket.remoteAddress);
      })
    : net.createServer({ noDelay: true }, (socket) => handle(socket, socket.remoteAddress));
  if (opts.tls) server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => log.debug({ address: socket.remoteAddress, err: err.message }, 'gateway TLS handshake failed'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  log.info({ host: opts.host, port, tls: !!opts.tls }, 'gateway ingress (embedded MQTT) listening');

  return {
    stats,
    url: `${opts.tls ? 'mqtts' : 'mqtt'}://${opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host}:${port}`,
    handleStream: (stream, remoteAddress) => handle(stream, remoteAddress),
    async close() {
      stopCredentialCheck();
      pacer.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await closed;
    },
  };
}
