import net from 'node:net';

/**
 * A TCP load balancer on 127.0.0.1 in front of the relay instances' HTTP ports, as production
 * puts one in front of them: the broker nodes ask it about logins and permissions
 * (rabbitmq_auth_backend_http), so a killed instance does not take its node's authentication
 * with it. Each connection goes to the next instance in turn that accepts it (at most one try each).
 */
export async function startBalancer(targets: () => number[]): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let next = 0;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const connectAny = (ports: number[], tries: number): Promise<net.Socket | undefined> =>
    new Promise((resolve) => {
      if (tries >= ports.length) return resolve(undefined);
      const port = ports[next++ % ports.length]!;
      const up = net.connect({ host: '127.0.0.1', port, noDelay: true });
      up.once('connect', () => resolve(up));
      up.once('error', () => resolve(connectAny(ports, tries + 1)));
    });
  const server = net.createServer({ noDelay: true }, (down) => {
    connections++;
    sockets.add(down);
    down.once('close', () => sockets.delete(down));
    down.pause();
    void connectAny(targets(), 0).then((up) => {
      if (!up) return void down.destroy();
      sockets.add(up);
      up.once('close', () => sockets.delete(up));
      up.on('error', () => down.destroy());
      down.on('error', () => up.destroy());
      up.pipe(down);
      down.pipe(up);
      down.resume();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
