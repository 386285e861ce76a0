import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { analysisId, TuError } from '@tu/shared';
import type { AppDeps } from '../sources.js';
import { parseQuery } from './images.js';

const listQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    status: z.enum(['queued', 'running', 'completed', 'failed']).optional(),
  })
  .strict();

/** GET /api/v1/analyses/:id (status, timeline, results, the photo's thumbnail) and GET /api/v1/analyses (recent). */
export function analysesRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.get<{ Params: { id: string } }>('/api/v1/analyses/:id', async (req) => {
    const id = analysisId.safeParse(req.params.id);
    if (!id.success) throw new TuError('INVALID_REQUEST', 'analysisId: 8-64 URL-safe characters');
    const view = deps.orchestrator.status(id.data);
    if (!view) throw new TuError('NOT_FOUND', `No analysis ${id.data} on this gateway (it may not have reached the orchestrator yet; retry in a moment).`);
    // The result card shows the thumbnail; the state (built from bus events) has only the photo's reference.
    const thumbnail = view.image.thumbnail ?? (await deps.thumbnailOf?.(view.image.sha256).catch(() => undefined));
    return thumbnail ? { ...view, image: { ...view.image, thumbnail } } : view;
  });
  app.get('/api/v1/analyses', async (req) => {
    const q = parseQuery(listQuery, req.query);
    return { analyses: deps.store.list({ limit: q.limit, ...(q.status ? { status: q.status } : {}) }) };
  });
}
