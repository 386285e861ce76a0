import type { WebSocket } from 'ws';
import { atWallTime } from '@tu/shared';

/** The part of config `graphql.websocket` the guard enforces. */
export interface WsGuardLimits {
  initTimeoutMs: number;
  maxPending: number;
  maxPendingPerAddress: number;
}

/**
 * Close codes: graphql-ws' own (its PROTOCOL.md; its client gives up on 4401 and retries on
 * 4408) and the WebSocket standard's "try again later". Reasons stay under the 123 bytes a close
 * frame allows.
 */
export const WS_CLOSE = {
  tokenExpired: { code: 4401, reason: 'Unauthorized: the token expired; connect again with a new token' },
  initTimeout: { code: 4408, reason: 'Connection initialisation timeout: send connection_init with a bearer token' },
  busy: { code: 1013, reason: 'Too many connections wait for connection_init; try again later' },
} as const;

/** A closed socket whose peer does not answer the close frame is cut after this long (ws waits 30 s). */
const CLOSE_GRACE_MS = 1000;

interface Pending {
  address: string;
  timer: NodeJS.Timeout;
}

/**
 * The graphql-ws sockets of /graphql outside mercurius' reach:
 * - Before connection_init. mercurius waits for it for ever, so a socket that never sends one
 *   held a file descriptor for good (200 such sockets were all still open after 40 s). Each is
 *   closed after `initTimeoutMs`; beyond `maxPending` waiting sockets in all, or
 *   `maxPendingPerAddress` from one address, a new socket is closed at once.
 * - After it. The token is verified once, in connection_init, and a subscription streamed on
 *   after the token expired; the connection is now closed when the token's `exp` passes.
 */
export class GraphqlWsGuard {
  readonly #pending = new Map<WebSocket, Pending>();
  readonly #perAddress = new Map<string, number>();
  readonly #expiry = new Map<WebSocket, { at: number; cancel: () => void }>();

  constructor(private readonly limits: WsGuardLimits) {}

  /** Sockets waiting for their connection_init (health, tests). */
  get pending(): number {
    return this.#pending.size;
  }

  /** A new /graphql WebSocket, before anything was read from it. */
  opened(socket: WebSocket, address: string): void {
    if (this.#pending.size >= this.limits.maxPending || (this.#perAddress.get(address) ?? 0) >= this.limits.maxPendingPerAddress) {
      closeSocket(socket, WS_CLOSE.busy);
      return;
    }
    const timer = setTimeout(() => {
      this.initialised(socket);
      closeSocket(socket, WS_CLOSE.initTimeout);
    }, this.limits.initTimeoutMs).unref();
    this.#pending.set(socket, { address, timer });
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    socket.once('close', () => this.initialised(socket));
  }

  /** The socket sent its connection_init (accepted or not: a refused one is closed by mercurius). */
  initialised(socket: WebSocket): void {
    const p = this.#pending.get(socket);
    if (!p) return;
    clearTimeout(p.timer);
    this.#pending.delete(socket);
    const n = (this.#perAddress.get(p.address) ?? 1) - 1;
    if (n > 0) this.#perAddress.set(p.address, n);
    else this.#perAddress.delete(p.address);
  }

  /**
   * Close the socket when the token that authenticated it expires (`exp`, seconds since the
   * epoch; a token without one leaves the socket alone). Called again (another connection_init
   * on the same socket), the earliest expiry stands.
   */
  expireAt(socket: WebSocket, exp: number | undefined): void {
    if (exp === undefined || socket.readyState > 1) return;
    const at = exp * 1000;
    const current = this.#expiry.get(socket);
    if (current && current.at <= at) return;
    if (current) current.cancel();
    else
      socket.once('close', () => {
        this.#expiry.get(socket)?.cancel();
        this.#expiry.delete(socket);
      });
    // Set before it is armed: an expiry already past fires (and deletes it) at once.
    const entry = { at, cancel: () => undefined as void };
    this.#expiry.set(socket, entry);
    entry.cancel = atWallTime(at, () => {
      this.#expiry.delete(socket);
      closeSocket(socket, WS_CLOSE.tokenExpired);
    });
  }

  /** Stops every timer (the app closes; its sockets are closed by @fastify/websocket). */
  dispose(): void {
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    for (const e of this.#expiry.values()) e.cancel();
    this.#pending.clear();
    this.#perAddress.clear();
    this.#expiry.clear();
  }
}

/** Close with a code and reason, and cut the socket if the peer does not complete the close. */
function closeSocket(socket: WebSocket, why: { code: number; reason: string }): void {
  if (socket.readyState > 1) return;
  socket.close(why.code, why.reason);
  setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
}
