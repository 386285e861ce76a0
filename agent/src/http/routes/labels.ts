import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { analysisId, teachLabel, technician, TuError } from '@tu/shared';
import type { AppDeps } from '../sources.js';
import { parseQuery } from './images.js';

const labelBody = z.object({ label: teachLabel, by: technician }).strict();
const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }).strict();

/**
 * Technicians teach the gateway (issue 13 part 4):
 * POST /api/v1/analyses/:id/label {label, by} → 201 (stored) or 200 (the analysis already had
 * this label: the same correction); GET /api/v1/analyses/:id/label → its current label or null (404: no such analysis);
 * GET /api/v1/labels → the labelled examples, newest first
 * (without embeddings: the UI needs none).
 */
export function labelsRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.post<{ Params: { id: string } }>('/api/v1/analyses/:id/label', async (req, reply) => {
    const id = analysisId.safeParse(req.params.id);
    if (!id.success) throw new TuError('INVALID_REQUEST', 'analysisId: 8-64 URL-safe characters');
    const body = labelBody.safeParse(req.body ?? {});
    if (!body.success) {
      const i = body.error.issues[0];
      throw new TuError('INVALID_REQUEST', `body ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
    }
    const r = await deps.teacher.label(id.data, body.data);
    return reply.status(r.created ? 201 : 200).send({ created: r.created, label: withoutEmbedding(r.example) });
  });
  app.get<{ Params: { id: string } }>('/api/v1/analyses/:id/label', async (req) => {
    const id = analysisId.safeParse(req.params.id);
    if (!id.success) throw new TuError('INVALID_REQUEST', 'analysisId: 8-64 URL-safe characters');
    const current = deps.teacher.current(id.data);
    // null means "not labelled yet": an id this gateway never saw is said to be unknown, as POST says it.
    if (!current && !deps.orchestrator.status(id.data)) throw new TuError('NOT_FOUND', `No analysis ${id.data} on this gateway; label a photo from the result list.`);
    return { label: current ? withoutEmbedding(current) : null };
  });
  app.get('/api/v1/labels', async (req) => {
    const q = parseQuery(listQuery, req.query);
    return { labels: deps.teacher.list({ limit: q.limit }).map(withoutEmbedding) };
  });
}

function withoutEmbedding<T extends { embedding: number[] }>(e: T): Omit<T, 'embedding'> & { embeddingLength: number } {
  const { embedding, ...rest } = e;
  return { ...rest, embeddingLength: embedding.length };
}
