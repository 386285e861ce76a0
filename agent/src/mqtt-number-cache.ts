import mqttPacket from 'mqtt-packet';

/**
 * Turns off mqtt-packet's number cache in this process (aedes and mqtt.js both write packets
 * with mqtt-packet, one shared copy). By default its first write builds 65,536 two-byte Buffers,
 * one per packet id and length, and keeps them: ~6 MB of the main thread's V8 heap at idle,
 * a fifth of it (heap snapshot of the release agent, docs/release.md "Where the memory goes").
 * Without the cache it allocates those two bytes per packet when it writes them.
 * Call before the first MQTT write: the broker and the bus clients start after it.
 */
export function dropMqttNumberCache(): void {
  mqttPacket.writeToStream.cacheNumbers = false;
}
