import type { FastifyInstance } from 'fastify';
import { TuError } from '@tu/shared';
import { machineProfileInput } from '../../device/schemas.js';
import { guardImageContentType, readImage } from '../read-image.js';
import type { AppDeps } from '../sources.js';

/** The registered machine (device state): GET/PUT /api/v1/machine, POST /api/v1/machine/references. */
export function machineRoutes(app: FastifyInstance, deps: AppDeps): void {
  const view = () => ({
    machine: deps.device.machine() ?? null,
    references: deps.device.references().map(({ embedding: _e, ...r }) => r),
  });
  app.get('/api/v1/machine', async () => view());
  app.put('/api/v1/machine', async (req) => {
    const parsed = machineProfileInput.safeParse(req.body);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new TuError('INVALID_REQUEST', `body ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}`);
    }
    await deps.device.setMachine(parsed.data);
    return view();
  });
  app.post('/api/v1/machine/references', {
    onRequest: async (req) => guardImageContentType(req),
    handler: async (req, reply) => {
      const { bytes, declaredType } = await readImage(req);
      const added = await deps.references.add(bytes, declaredType);
      return reply.status(201).send(added);
    },
  });
}
