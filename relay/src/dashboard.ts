import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { serveBuiltUi } from '@tu/shared/internal/http-ui';

/** relay/ui/dist, relative to this file (relay/src). */
export const DASHBOARD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../ui/dist');

/**
 * The cloud dashboard (relay/ui, `npm run build:ui`) at `/` and `/assets/*`
 * (shared/src/http-ui.ts); 503 UI_NOT_BUILT while it is not built.
 */
export async function dashboard(app: FastifyInstance, opts: { dir?: string } = {}): Promise<void> {
  await serveBuiltUi(app, { root: opts.dir ?? DASHBOARD_DIR });
}
