import net from 'node:net';
import type { Duplex } from 'node:stream';

/** How a bus client reaches the broker: TCP (TCP_NODELAY set) or an in-process stream. */
export type Transport =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'stream'; open: () => Duplex };

export function openTransport(t: Transport): Duplex {
  if (t.kind === 'stream') return t.open();
  // Nagle costs ~88 ms per QoS 1 round trip here (DESIGN §3).
  return net.connect({ host: t.host, port: t.port, noDelay: true });
}
