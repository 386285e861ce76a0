import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { machineId, TuError } from '@tu/shared';
import { guardImageContentType, readImage } from '../read-image.js';
import type { AppDeps } from '../sources.js';

const query = z.object({ machineId: machineId.optional() }).strict();

export function parseQuery<T>(schema: z.ZodType<T>, raw: unknown): T {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new TuError('INVALID_REQUEST', `query ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** POST /api/v1/images: raw image body or multipart field `image` → 202 {analysisId}. */
export function imagesRoute(app: FastifyInstance, deps: AppDeps): void {
  app.post('/api/v1/images', {
    onRequest: async (req) => guardImageContentType(req),
    handler: async (req, reply) => {
      const q = parseQuery(query, req.query);
      const { bytes, declaredType } = await readImage(req);
      const accepted = await deps.intake.accept(bytes, declaredType, { ...(q.machineId ? { machineId: q.machineId } : {}), via: 'api' });
      return reply
        .status(202)
        .header('location', `/api/v1/analyses/${accepted.analysisId}`)
        .send({ analysisId: accepted.analysisId, sha256: accepted.image.sha256 });
    },
  });
}
