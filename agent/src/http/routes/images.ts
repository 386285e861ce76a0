import type { FastifyInstance, FastifyRequest } from 'fastify';
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

/** Seconds a client is told to wait when the queue is full (a few analyses' worth). */
export const QUEUE_FULL_RETRY_AFTER_S = 5;

/** POST /api/v1/images: raw image body (file name in X-File-Name) or multipart field `image` → 202 {analysisId}; 429 + Retry-After when the queue is full. */
export function imagesRoute(app: FastifyInstance, deps: AppDeps): void {
  const places = new WeakMap<FastifyRequest, { release(): void }>();
  const release = async (req: FastifyRequest) => places.get(req)?.release();
  app.post('/api/v1/images', {
    onRequest: async (req, reply) => {
      guardImageContentType(req);
      // A place in the queue is taken at the door, before the body is read: never a 202 that
      // later fails with QUEUE_FULL. It is given back once the upload was answered.
      const place = deps.intake.reserve();
      if (!place) {
        void reply.header('retry-after', String(QUEUE_FULL_RETRY_AFTER_S));
        throw new TuError('QUEUE_FULL', `Too many photos are waiting to be analysed; try again in ${QUEUE_FULL_RETRY_AFTER_S} s.`);
      }
      places.set(req, place);
    },
    onResponse: release,
    onRequestAbort: release,
    handler: async (req, reply) => {
      const q = parseQuery(query, req.query);
      const { bytes, declaredType, fileName, sha256 } = await readImage(req);
      const accepted = await deps.intake.accept(bytes, declaredType, {
        ...(q.machineId ? { machineId: q.machineId } : {}),
        ...(fileName ? { fileName } : {}),
        ...(sha256 ? { sha256 } : {}),
        via: 'api',
      });
      return reply
        .status(202)
        .header('location', `/api/v1/analyses/${accepted.analysisId}`)
        .send({ analysisId: accepted.analysisId, sha256: accepted.image.sha256 });
    },
  });
}
