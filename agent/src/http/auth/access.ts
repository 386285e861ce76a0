/**
 * Who may call what: every API route names the role it needs in ROUTE_ACCESS (the one
 * table), and one onRequest hook enforces it before any route code (or the upload's place
 * in the queue) runs. An /api route missing from the table stops the app from building.
 *
 * Browser-borne attacks: no cookies are used, the token travels in `Authorization: Bearer`
 * (or `?token=` on the WebSocket, whose browser API cannot set headers), so a page of
 * another site cannot make a technician's browser send it (no CSRF). Such a page can still
 * send requests that need no token to be read (a plain POST); every state-changing request
 * and every WebSocket handshake that carries an `Origin` other than the agent's own is
 * refused (CROSS_ORIGIN_REFUSED) before anything else.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TuError } from '@tu/shared';
import { grantedRoles, type Role } from '@tu/shared/internal/technician-roles';
import type { Technician, TokenVerifier } from './tokens.js';

/**
 * - a Role: a valid token granting it;
 * - `public`: anyone; a valid token, if sent, is still read (health shows more to a viewer);
 * - `local-or-view`: anyone on the gateway itself (loopback: a local Prometheus), else `view`.
 */
export type Access = Role | 'public' | 'local-or-view';

export const ROUTE_ACCESS: Readonly<Record<string, Access>> = {
  'GET /api/v1/health': 'public',
  'GET /api/v1/analyses': 'view',
  'GET /api/v1/analyses/:id': 'view',
  'GET /api/v1/analyses/:id/label': 'view',
  'GET /api/v1/labels': 'view',
  'GET /api/v1/machine': 'view',
  'GET /api/v1/events': 'view',
  'POST /api/v1/images': 'upload',
  'PUT /api/v1/machine': 'register',
  'POST /api/v1/machine/references': 'register',
  'POST /api/v1/analyses/:id/label': 'teach',
  'GET /metrics': 'local-or-view',
};

/** Only these paths hold data or act; everything else is the UI shell (index.html, /assets), public. */
const guarded = (url: string) => url.startsWith('/api/') || url === '/metrics';

const accessOf = (method: string, url: string): Access | undefined => ROUTE_ACCESS[`${method === 'HEAD' ? 'GET' : method} ${url}`];

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

declare module 'fastify' {
  interface FastifyRequest {
    /** The technician of a valid token (null: none sent, or on a public route an invalid one). */
    technician: Technician | null;
  }
}

/** Whether the request's technician holds `role` (its token's roles and what they imply). */
export const hasRole = (req: FastifyRequest, role: Role): boolean => req.technician !== null && grantedRoles(req.technician.roles).has(role);

const isWebSocket = (req: FastifyRequest) => String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';

/** The token of a request: `Authorization: Bearer`, or `?token=` on a WebSocket handshake only. */
function tokenOf(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (!m) throw new TuError('TOKEN_INVALID', 'The Authorization header must read `Bearer <technician token>`.');
    return m[1];
  }
  if (isWebSocket(req)) {
    const q = (req.query as Record<string, unknown> | undefined)?.token;
    if (typeof q === 'string' && q.length > 0) return q;
  }
  return undefined;
}

/** A browser's Origin must name the host the request was sent to: the agent's own page. */
function checkOrigin(req: FastifyRequest): void {
  if (SAFE_METHODS.has(req.method) && !isWebSocket(req)) return;
  const origin = req.headers.origin;
  if (origin === undefined) return; // not a browser (curl, scripts, the CLI): the token decides
  let host: string | undefined;
  try {
    host = new URL(origin).host;
  } catch {
    host = undefined; // `null` (sandboxed frames, file://) or garbage: never our page
  }
  if (!host || host !== req.headers.host) {
    throw new TuError('CROSS_ORIGIN_REFUSED', `A page of ${origin.slice(0, 100)} may not ${isWebSocket(req) ? 'open the live feed of' : 'change'} this gateway; open the gateway page itself.`);
  }
}

export function installAccessControl(app: FastifyInstance, verifier: TokenVerifier): void {
  app.decorateRequest('technician', null);
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) {
      if (guarded(route.url) && m !== 'OPTIONS' && !accessOf(m, route.url)) throw new Error(`route ${m} ${route.url} is missing from ROUTE_ACCESS (agent/src/http/auth/access.ts)`);
    }
  });
  app.addHook('onRequest', async (req) => {
    checkOrigin(req);
    const url = req.routeOptions.url;
    if (url === undefined || !guarded(url)) return; // the UI shell, or no such route (404)
    const access = accessOf(req.method, url);
    if (!access) throw new TuError('NOT_FOUND');
    if (access === 'public') {
      // A bad token (or Authorization header) on an open route is not an error: the caller gets the public answer.
      req.technician = await Promise.resolve()
        .then(() => tokenOf(req))
        .then((token) => (token ? verifier.verify(token) : null))
        .catch(() => null);
      return;
    }
    const token = tokenOf(req);
    if (access === 'local-or-view' && !token && LOOPBACK.has(req.socket.remoteAddress ?? '')) return;
    if (!token) throw new TuError('TOKEN_REQUIRED');
    req.technician = await verifier.verify(token);
    const role: Role = access === 'local-or-view' ? 'view' : access;
    if (!hasRole(req, role)) {
      throw new TuError('ROLE_REQUIRED', `Your token (${req.technician.sub}: ${req.technician.roles.join(', ')}) lacks the "${role}" role needed to ${req.method} ${url}. Ask for a token with the ${role} role.`);
    }
  });
}
