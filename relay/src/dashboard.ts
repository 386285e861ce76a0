import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** relay/ui/dist, relative to this file (relay/src). */
export const DASHBOARD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../ui/dist');

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

/**
 * The cloud dashboard (relay/ui, `npx vite build relay/ui`) at `/` and `/assets/*`; a clear
 * 503 JSON error when it is not built. Register with `app.register(dashboard)`.
 */
export async function dashboard(app: FastifyInstance, opts: { dir?: string } = {}): Promise<void> {
  const root = path.resolve(opts.dir ?? DASHBOARD_DIR);
  const serve = async (url: string, reply: FastifyReply) => {
    if (!fs.existsSync(path.join(root, 'index.html'))) {
      return reply.status(503).type('application/json').send({ error: { code: 'UI_NOT_BUILT', message: `The dashboard is not built; run \`npm run build:ui\` (looked in ${root}).` } });
    }
    let rel = '/index.html';
    try {
      const p = decodeURIComponent(url.split('?')[0] ?? '/');
      if (p !== '/') rel = p;
    } catch {
      return reply.status(404).send({ error: { code: 'NOT_FOUND', message: 'No such file' } });
    }
    const abs = path.resolve(root, `.${rel}`);
    if (rel.includes('\0') || rel.split('/').some((s) => s.startsWith('.')) || !abs.startsWith(root + path.sep)) {
      return reply.status(404).send({ error: { code: 'NOT_FOUND', message: 'No such file' } });
    }
    try {
      const body = await fs.promises.readFile(abs);
      return reply
        .type(TYPES[path.extname(abs)] ?? 'application/octet-stream')
        .header('cache-control', rel.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache')
        .send(body);
    } catch {
      return reply.status(404).send({ error: { code: 'NOT_FOUND', message: `No file ${rel} in the dashboard build` } });
    }
  };
  app.get('/', async (req, reply) => serve(req.url, reply));
  app.get('/assets/*', async (req, reply) => serve(req.url, reply));
}
