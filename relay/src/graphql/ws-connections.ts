/**
 * The `connections` gauge of open graphql-ws connections (metrics, health). mercurius calls
 * `onDisconnect` once per close path (a client's close message, then the socket's own close
 * event), so each accepted connection carries a token and is released only the first time.
 */
export class WsConnections {
  readonly #open = new WeakSet<object>();
  constructor(private readonly gauge: { connections: number }) {}

  /** An accepted connection; keep the token in the connection's context. */
  opened(): object {
    const token = {};
    this.#open.add(token);
    this.gauge.connections++;
    return token;
  }

  /** A connection closed (any number of times; refused connections carry no token). */
  closed(token: unknown): void {
    if (typeof token === 'object' && token !== null && this.#open.delete(token)) this.gauge.connections--;
  }
}
