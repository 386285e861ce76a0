import fs from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ERROR_CODES, TuError } from './errors.js';

/**
 * Sent with every file of a built UI (both UIs hold a token in the tab that acts on a gateway or
 * reads a tenant's data):
 * - `frame-ancestors 'none'` and `X-Frame-Options: DENY` (browsers before CSP 2): no page of
 *   another site can show the UI in a frame and lure a signed-in technician into clicking in it
 *   (before, any site could frame both UIs);
 * - `script-src 'self'`: only the UI's own bundle runs, so text an attacker gets into a page
 *   (a machine name, a label) cannot run as an inline script or an eval;
 * - `object-src 'none'`, `base-uri 'none'`, `form-action 'self'`: no plugins, no `<base>`
 *   redirecting the bundle's relative URLs, no form posting elsewhere.
 * Fetches, WebSockets, styles and images are left to the browser's defaults: the UIs load
 * thumbnails as data: URLs and open their WebSocket on the page's own host, which `'self'`
 * matches only in recent browsers.
 */
export const UI_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
};

export interface BuiltUiOptions {
  /** The Vite output directory (index.html and assets/). */
  root: string;
}

/**
 * Serves a built front end (Vite output: the agent's technician UI, the relay's dashboard)
 * with @fastify/static: `/` and `/index.html` are index.html (revalidated on every load),
 * `/assets/*` are Vite's content-hashed files (cached for a year). Nothing else of the
 * directory is reachable: no listing, no dotfiles, no path outside `assets/` (404 NOT_FOUND). While
 * index.html is missing (the UI is not built yet) every one of these paths answers
 * 503 UI_NOT_BUILT, checked per request so a later `npm run build:ui` needs no restart.
 */
export async function serveBuiltUi(app: FastifyInstance, opts: BuiltUiOptions): Promise<void> {
  const root = path.resolve(opts.root);
  const assets = path.join(root, 'assets');
  await app.register(async (scope) => {
    scope.addHook('onRequest', async () => {
      if (!fs.existsSync(path.join(root, 'index.html'))) throw new TuError('UI_NOT_BUILT', `${ERROR_CODES.UI_NOT_BUILT.message} Looked in ${root}.`);
    });
    // @fastify/static refuses a directory or a non-canonical path (`\`, `..`) with 403; to a
    // client it is simply not there, like any other missing file (the not-found handler's 404).
    scope.setErrorHandler((err: FastifyError, _req, reply) => {
      if (err.statusCode === 403) return reply.callNotFound();
      throw err;
    });
    await scope.register(fastifyStatic, {
      root: assets,
      prefix: '/assets/',
      dotfiles: 'ignore',
      index: false,
      list: false,
      // The directory appears with the first build; its absence is reported per request above.
      suppressWarning: true,
      cacheControl: false,
      // Also applied by sendFile (index.html below): only Vite's hashed assets are immutable.
      setHeaders: (reply, file) => void reply.header('cache-control', file.startsWith(assets + path.sep) ? 'public, max-age=31536000, immutable' : 'no-cache').headers(UI_SECURITY_HEADERS),
    });
    const index = (reply: FastifyReply) => reply.sendFile('index.html', root);
    scope.get('/', (_req, reply) => index(reply));
    scope.get('/index.html', (_req, reply) => index(reply));
  });
}
