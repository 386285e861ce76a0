import type { FastifyInstance } from 'fastify';
import { serveBuiltUi } from '@tu/shared/internal/http-ui';
import type { AppDeps } from '../sources.js';
import { appLayout } from '../../release/layout.js';

/** agent/ui/dist in a checkout, <app>/ui in a release (release/layout.ts). */
export const DEFAULT_UI_DIR = appLayout().uiDir;

/**
 * The technician UI (agent/ui, built by `npm run build:ui`) at `/` and `/assets/*`
 * (shared/src/http-ui.ts). When the build is missing, these answer 503 UI_NOT_BUILT.
 */
export async function uiRoute(app: FastifyInstance, deps: Pick<AppDeps, 'uiDir'>): Promise<void> {
  await serveBuiltUi(app, { root: deps.uiDir ?? DEFAULT_UI_DIR });
}
