import net from 'node:net';
import { MqttClient } from 'mqtt';
import WebSocket from 'ws';

/** What an attacker sends, shared by the security tests (test/security.*.test.ts) and `npm run bench -- attack`. */

/** A CONNECT fixed header announcing `length` body bytes (remaining length as an MQTT varint). */
export function connectHeader(length: number): Buffer {
  const bytes = [0x10];
  do {
    let b = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) b |= 0x80;
    bytes.push(b);
  } while (length > 0);
  return Buffer.from(bytes);
}

const CHUNK = Buffer.alloc(1024 * 1024, 0x41);

/**
 * Streams over TCP a CONNECT announcing `announcedBytes`, sending up to `sendBytes` of it, until
 * the peer cuts the connection; resolves with the bytes it got out.
 */
export function floodConnectTcp(port: number, announcedBytes: number, sendBytes: number): Promise<number> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let sent = 0;
    const done = () => resolve(sent);
    s.on('error', done);
    s.on('close', done);
    s.on('connect', () => {
      s.write(connectHeader(announcedBytes));
      const pump = () => {
        while (sent < sendBytes && !s.destroyed) {
          sent += CHUNK.length;
          if (!s.write(CHUNK)) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
  });
}

/** The same through MQTT over WebSocket (binary frames of 512 KB). */
export function floodConnectWs(url: string, announcedBytes: number, sendBytes: number): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, 'mqtt');
    let sent = 0;
    const done = () => resolve(sent);
    ws.on('error', done);
    ws.on('close', done);
    ws.on('open', () => {
      ws.send(connectHeader(announcedBytes));
      const frame = CHUNK.subarray(0, 512 * 1024);
      const pump = () => {
        while (sent < sendBytes && ws.readyState === WebSocket.OPEN) {
          if (ws.bufferedAmount > 8 * 1024 * 1024) return void setTimeout(pump, 5);
          sent += frame.length;
          ws.send(frame);
        }
        ws.close();
      };
      pump();
    });
  });
}

/** An MQTT 3.1.1 login (client id = username) from a chosen loopback address; resolves with the outcome. */
export function loginFrom(mqttUrl: string, localAddress: string, username: string, password: string): Promise<{ ok: boolean; ms: number; error?: string }> {
  const u = new URL(mqttUrl);
  const t0 = performance.now();
  return new Promise((resolve) => {
    const c = new MqttClient(() => net.connect({ host: u.hostname, port: Number(u.port), localAddress }), { protocolVersion: 4, clientId: username, username, password, reconnectPeriod: 0, connectTimeout: 10_000 });
    let settled = false;
    const end = (ok: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      resolve({ ok, ms: performance.now() - t0, ...(error ? { error } : {}) });
      c.end(true);
    };
    c.once('connect', () => end(true));
    c.once('error', (err) => end(false, err.message));
    // Cut before CONNACK (the connect-rate limit): no error event, just a close.
    c.once('close', () => end(false, 'connection closed'));
  });
}

/** Opens `count` TCP connections from `localAddress` that never send a byte (they wait for the broker's CONNECT timeout). */
export async function openSilent(port: number, localAddress: string, count: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
        s.once('error', reject);
      }).then((s) => {
        s.on('error', () => undefined);
        return s;
      }),
    ),
  );
}
