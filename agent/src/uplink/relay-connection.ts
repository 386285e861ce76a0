import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { connect as mqttConnect, MqttClient, type IClientOptions } from 'mqtt';
import { TuError } from '@tu/shared';

export interface RelayTls {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
}

/** Resolved relay endpoint: URL, credentials and TLS material (files already read). */
export interface RelayEndpoint {
  url: string;
  username: string;
  password?: string;
  clientId: string;
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean };
  keepaliveS: number;
  connectTimeoutMs: number;
}

const readFile = (what: string, file: string | undefined): Buffer | undefined => {
  if (!file) return undefined;
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new TuError('UPLINK_CONFIG_INVALID', `uplink.${what}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
};

/** Reads the password file and TLS files named in config (fails fast with UPLINK_CONFIG_INVALID). */
export function resolveEndpoint(c: {
  url: string;
  gatewayId: string;
  username?: string;
  password?: string;
  passwordFile?: string;
  tls: RelayTls;
  keepaliveS: number;
  connectTimeoutMs: number;
}): RelayEndpoint {
  let password = c.password;
  if (!password && c.passwordFile) {
    password = readFile('passwordFile', c.passwordFile)!.toString('utf8').split('\n')[0]!.trim();
    if (!password) throw new TuError('UPLINK_CONFIG_INVALID', `uplink.passwordFile: ${c.passwordFile} is empty`);
  }
  const ca = readFile('tls.ca', c.tls.ca);
  const cert = readFile('tls.cert', c.tls.cert);
  const key = readFile('tls.key', c.tls.key);
  return {
    url: c.url,
    username: c.username ?? c.gatewayId,
    ...(password ? { password } : {}),
    // The relay accepts only the gateway id as client id (relay/src/ingress/embedded.ts).
    clientId: c.gatewayId,
    tls: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), rejectUnauthorized: c.tls.rejectUnauthorized },
    keepaliveS: c.keepaliveS,
    connectTimeoutMs: c.connectTimeoutMs,
  };
}

/**
 * What the uplink trusts for the relay's certificate, said once at start (undefined for plain
 * mqtt:// and ws://). With uplink.tls.ca, only those CAs: Node's `ca` option replaces its
 * bundled store, so a relay certificate from any other CA is refused. Without it, Node's bundled
 * public CAs: deliberate, for a relay behind a publicly issued certificate, and said so in the
 * log so a missing tls.ca on a private CA shows as the reason for the handshake errors.
 */
export function relayTrust(url: string, t: RelayTls): string | undefined {
  if (!/^(mqtts|wss):/.test(url)) return undefined;
  if (!t.rejectUnauthorized) return 'uplink.tls.rejectUnauthorized is false: the relay certificate is NOT verified (development only)';
  return t.ca ? `the relay certificate must chain to the CA(s) in ${t.ca} (uplink.tls.ca)` : "the relay certificate is verified against Node's bundled public CAs (no uplink.tls.ca; set it for a relay with a private CA)";
}

/** The URL without credentials (for logs and health). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}

/**
 * One MQTT 3.1.1 connection to the relay, without mqtt.js's own reconnect (the forwarder
 * owns reconnect, backoff and re-sends from the outbox). mqtt:// and mqtts:// go through
 * a stream builder that sets TCP_NODELAY (DESIGN §3); ws:// and wss:// use mqtt.js's
 * WebSocket transport (the ws library sets TCP_NODELAY on its socket).
 */
export function openRelayConnection(ep: RelayEndpoint, mqttOpts: Pick<IClientOptions, 'will'>): MqttClient {
  const u = new URL(ep.url);
  const opts: IClientOptions = {
    protocolVersion: 4,
    clientId: ep.clientId,
    username: ep.username,
    ...(ep.password !== undefined ? { password: ep.password } : {}),
    clean: true,
    keepalive: ep.keepaliveS,
    reconnectPeriod: 0,
    connectTimeout: ep.connectTimeoutMs,
    queueQoSZero: false,
    ...mqttOpts,
  };
  const port = (dflt: number) => (u.port ? Number(u.port) : dflt);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  switch (u.protocol) {
    case 'mqtt:':
      return new MqttClient(() => net.connect({ host, port: port(1883), noDelay: true }), opts);
    case 'mqtts:':
      return new MqttClient((): Duplex => {
        const s = tls.connect({
          host,
          port: port(8883),
          ...(net.isIP(host) ? {} : { servername: host }),
          ...ep.tls,
        });
        s.setNoDelay(true);
        return s;
      }, opts);
    case 'ws:':
    case 'wss:':
      return mqttConnect(ep.url, {
        ...opts,
        ...(u.protocol === 'wss:' ? { ...ep.tls } : {}),
        wsOptions: u.protocol === 'wss:' ? { ...ep.tls } : {},
      });
    default:
      throw new TuError('UPLINK_CONFIG_INVALID', `uplink.url: unsupported protocol ${u.protocol}`);
  }
}
