import { Duplex } from 'node:stream';

/**
 * Two connected in-memory duplex streams (Node 20 lacks stream.duplexPair). The MQTT writers
 * (mqtt-packet's writeToStream, used by aedes and mqtt.js) cork the stream and write a packet as
 * several small chunks (header, topic, id, payload); `writev` hands the other side everything
 * written in that tick as one chunk, so its parser runs once per tick, not once per chunk.
 */
export function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  const make = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        other().push(chunk);
        cb();
      },
      writev(chunks: { chunk: Buffer }[], cb) {
        other().push(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)));
        cb();
      },
      final(cb) {
        other().push(null);
        cb();
      },
      destroy(err, cb) {
        const o = other();
        if (!o.destroyed) o.destroy();
        cb(err);
      },
    });
  sides.push(make(() => sides[1]!), make(() => sides[0]!));
  return [sides[0]!, sides[1]!];
}
