import { Duplex } from 'node:stream';

/**
 * Limits enforced on an MQTT byte stream before any packet is parsed. The MQTT parser
 * (mqtt-packet, inside aedes) buffers a whole packet before it looks at it, so a client that
 * announces a 250 MB CONNECT makes the broker hold 250 MB before authentication has even run.
 * The guard reads only the fixed headers (type and remaining length) and cuts the connection
 * as soon as a header announces more than the limit, so at most one packet of the allowed
 * size is ever buffered per connection.
 */
export interface PacketLimits {
  /** Largest CONNECT packet (credentials, client id, will); the only packet before authentication. */
  maxConnectBytes: number;
  /** Largest packet of any other type once connected (the broker's payload limit plus headers). */
  maxPacketBytes: number;
}

export type PacketViolation = 'first-packet-not-connect' | 'connect-too-large' | 'packet-too-large' | 'malformed-length';

const CONNECT = 1;

/**
 * Reads MQTT fixed headers across chunk boundaries. Each header is: one byte of type and flags,
 * then the remaining length as a varint of 1-4 bytes (MQTT 3.1.1 §2.2.3).
 */
export class FixedHeaderReader {
  #remaining = 0; // body bytes of the current packet still to skip
  #header: number[] = [];
  #packets = 0;
  constructor(private readonly limits: PacketLimits) {}

  /** True once the first packet (the CONNECT) has arrived whole. */
  get connectReceived(): boolean {
    return this.#packets > 1 || (this.#packets === 1 && this.#remaining === 0);
  }

  /** Feeds a chunk; returns the first violation it holds, if any. */
  feed(chunk: Uint8Array): PacketViolation | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.#remaining > 0) {
        const skip = Math.min(this.#remaining, chunk.length - i);
        this.#remaining -= skip;
        i += skip;
        continue;
      }
      this.#header.push(chunk[i++]!);
      const h = this.#header;
      if (h.length === 1) continue;
      const last = h[h.length - 1]!;
      if (last & 0x80) {
        if (h.length === 5) return 'malformed-length';
        continue;
      }
      let length = 0;
      for (let k = h.length - 1; k >= 1; k--) length = length * 128 + (h[k]! & 0x7f);
      const type = h[0]! >> 4;
      this.#header = [];
      const first = this.#packets++ === 0;
      if (first && type !== CONNECT) return 'first-packet-not-connect';
      if (type === CONNECT && length > this.limits.maxConnectBytes) return 'connect-too-large';
      if (length > this.limits.maxPacketBytes) return 'packet-too-large';
      this.#remaining = length;
    }
    return undefined;
  }
}

/**
 * Wraps a client connection (TCP socket or WebSocket stream) for the broker: bytes pass
 * through unchanged, and the connection is destroyed the moment a fixed header breaks the
 * limits (before the broker has buffered the packet). Writes go straight to the connection;
 * what aedes wrote corked (one packet as several chunks, mqtt-packet's writeToStream) goes as one
 * write, so one syscall per packet and not one per chunk.
 */
export function guardMqttStream(conn: Duplex, limits: PacketLimits, onViolation: (why: PacketViolation) => void, onConnectReceived?: () => void): Duplex {
  const reader = new FixedHeaderReader(limits);
  let connectSeen = false;
  let violated = false;
  const guarded: Duplex = new Duplex({
    read() {
      conn.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      conn.write(chunk, cb);
    },
    writev(chunks: { chunk: Buffer }[], cb) {
      conn.write(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), cb);
    },
    final(cb) {
      conn.end(cb);
    },
    destroy(err, cb) {
      conn.destroy();
      cb(err);
    },
  });
  conn.on('data', (chunk: Buffer) => {
    if (violated) return;
    const why = reader.feed(chunk);
    if (why) {
      violated = true;
      onViolation(why);
      conn.destroy();
      guarded.destroy();
      return;
    }
    if (!connectSeen && reader.connectReceived) {
      connectSeen = true;
      onConnectReceived?.();
    }
    if (!guarded.push(chunk)) conn.pause();
  });
  conn.on('end', () => guarded.push(null));
  conn.on('close', () => guarded.destroy());
  conn.on('error', (err) => guarded.destroy(err));
  return guarded;
}
