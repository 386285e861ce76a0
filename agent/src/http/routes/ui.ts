import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ERROR_CODES } from '@tu/shared';
import type { ErrorBody } from '../errors.js';
import { readStatic } from '../static-files.js';
import type { AppDeps } from '../sources.js';
import { appLayout } from '../../release/layout.js';

/** agent/ui/dist in a checkout, <app>/ui in a release (release/layout.ts). */
export const DEFAULT_UI_DIR = appLayout().uiDir;

/**
 * The technician UI (agent/ui, built by `npm run build:ui`) at `/` and `/assets/*`.
 * When the build is missing, `/` answers 503 with a JSON error saying how to build it.
 */
export function uiRoute(app: FastifyInstance, deps: AppDeps): void {
  const root = deps.uiDir ?? DEFAULT_UI_DIR;
  const serve = async (url: string, reply: FastifyReply) => {
    if (!fs.existsSync(path.join(root, 'index.html'))) {
      const body: ErrorBody = { error: { code: 'UI_NOT_BUILT', message: `${ERROR_CODES.UI_NOT_BUILT} (looked in ${root})` } };
      return reply.status(503).type('application/json').send(body);
    }
    const file = await readStatic(root, url);
    if (!file) {
      const body: ErrorBody = { error: { code: 'NOT_FOUND', message: `No file ${url.split('?')[0]} in the UI build` } };
      return reply.status(404).send(body);
    }
    return reply.type(file.type).header('cache-control', file.cacheControl).header('x-content-type-options', 'nosniff').send(file.body);
  };
  app.get('/', async (req, reply) => serve(req.url, reply));
  app.get('/index.html', async (req, reply) => serve(req.url, reply));
  app.get('/assets/*', async (req, reply) => serve(req.url, reply));
  app.get('/favicon.svg', async (req, reply) => serve(req.url, reply));
}
