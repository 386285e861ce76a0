import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { atWallTime } from '@tu/shared';
import type { AppDeps } from '../sources.js';
import { slimEvent } from '../event-feed.js';

/** Close code for a client whose send buffer exceeded the limit (application range 4000-4999). */
export const WS_CLOSE_SLOW_CLIENT = 4008;
/**
 * Close code when the technician token that opened the feed expires: graphql-ws' "Unauthorized"
 * (the relay closes its subscriptions with it too, relay/src/graphql/ws-guard.ts). The reason
 * stays under the 123 bytes a close frame allows.
 */
export const WS_CLOSE_TOKEN_EXPIRED = { code: 4401, reason: 'Unauthorized: the technician token expired; connect again with a new one' } as const;
/** Close code when the feed is not available (agent built without an event feed). */
export const WS_CLOSE_UNAVAILABLE = 1013;
const PING_INTERVAL_MS = 25_000;

/**
 * WebSocket GET /api/v1/events: live bus events (never commands) as JSON CloudEvents, one per
 * text frame. Anything a client sends is ignored. A client that does not keep up (more than
 * `limits.wsMaxBufferedBytes` waiting in its send buffer) is closed with 4008 so one slow
 * phone cannot make the agent buffer without bound; it reconnects and reloads from the API.
 *
 * The token is checked once, at the handshake (auth/access.ts); the feed is closed with 4401
 * when it expires. Before, a feed opened with a token a minute before its expiry streamed every
 * later event of the gateway for as long as the socket stayed open.
 */
export function eventsRoute(app: FastifyInstance, deps: AppDeps): void {
  const maxBuffered = deps.eventsMaxBufferedBytes ?? 1024 * 1024;
  const sockets = new Set<WebSocket>();
  const ping = setInterval(() => {
    for (const s of sockets) if (s.readyState === s.OPEN) s.ping();
  }, PING_INTERVAL_MS);
  ping.unref();
  app.addHook('onClose', async () => {
    clearInterval(ping);
    for (const s of sockets) s.close(1001, 'agent stopping');
  });

  app.get('/api/v1/events', { websocket: true }, (socket, req) => {
    const feed = deps.events;
    if (!feed) {
      socket.close(WS_CLOSE_UNAVAILABLE, 'event feed not available');
      return;
    }
    // Access control let in only a technician with `view` (ROUTE_ACCESS); fail closed otherwise.
    const exp = req.technician?.exp;
    if (exp === undefined) {
      socket.close(WS_CLOSE_TOKEN_EXPIRED.code, WS_CLOSE_TOKEN_EXPIRED.reason);
      return;
    }
    let off: () => void = () => undefined;
    const cancelExpiry = atWallTime(exp * 1000, () => {
      off();
      socket.close(WS_CLOSE_TOKEN_EXPIRED.code, WS_CLOSE_TOKEN_EXPIRED.reason);
    });
    if (socket.readyState !== socket.OPEN) {
      cancelExpiry();
      return;
    }
    sockets.add(socket);
    off = feed.subscribe((event) => {
      if (socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount > maxBuffered) {
        off();
        socket.close(WS_CLOSE_SLOW_CLIENT, 'slow client: send buffer full');
        return;
      }
      socket.send(JSON.stringify(slimEvent(event)));
    });
    socket.on('message', () => undefined); // events only: nothing a client sends is acted on
    socket.on('close', () => {
      cancelExpiry();
      off();
      sockets.delete(socket);
    });
    socket.on('error', () => {
      cancelExpiry();
      off();
      sockets.delete(socket);
    });
  });
}
