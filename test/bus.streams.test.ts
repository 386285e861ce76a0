import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import { duplexPair, guardMqttStream } from '@tu/shared';

// mqtt-packet's writeToStream (used by aedes and mqtt.js) corks the stream and writes one
// PUBLISH as several chunks. The in-process pair and the broker's packet guard hand on what was
// written in that tick as one chunk: one parse on the other side of the pair, one socket write
// (one syscall) behind the guard. bench/orchestrator.bench.ts measures what that buys.

const publish = (n: number) => ({
  cmd: 'publish' as const,
  topic: `tu/gw-1/evt/analysis.started`,
  payload: Buffer.from(JSON.stringify({ n, pad: 'x'.repeat(200) })),
  qos: 1 as const,
  messageId: n,
  retain: false,
  dup: false,
});
const tick = () => new Promise((r) => setImmediate(r));

const test = suite('bus streams: an MQTT packet written corked leaves as one chunk');

test('the in-process pair delivers the packets of one tick as one chunk, bytes in order', async () => {
  const [a, b] = duplexPair();
  const got: Buffer[] = [];
  b.on('data', (c: Buffer) => got.push(c));
  for (const n of [1, 2, 3]) mqttPacket.writeToStream(publish(n), a);
  await tick();
  assert.is(got.length, 1, 'three packets written in one tick arrive as one chunk');
  assert.equal(got[0], Buffer.concat([1, 2, 3].map((n) => mqttPacket.generate(publish(n)))));
  // An uncorked write still goes through on its own.
  a.write(Buffer.from([0xc0, 0x00]));
  await tick();
  assert.equal(got[1], Buffer.from([0xc0, 0x00]));
});

test("the broker's packet guard writes one corked packet to the connection in one write", async () => {
  const writes: Buffer[] = [];
  const conn = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      writes.push(chunk);
      cb();
    },
  });
  const guarded = guardMqttStream(conn, { maxConnectBytes: 1024, maxPacketBytes: 4096 }, () => undefined);
  mqttPacket.writeToStream(publish(7), guarded);
  await tick();
  assert.is(writes.length, 1, 'header, topic, id and payload go as one write');
  assert.equal(writes[0], mqttPacket.generate(publish(7)));
  guarded.destroy();
});

test.run();
