import { isErrorCode, TuError } from '@tu/shared';
import type { BlobStore } from '../blobs/store.js';
import type { StorageGuard } from '../fs/storage-guard.js';
import { validateImage, type IntakeLimits } from '../intake/validate.js';
import { phash } from '../services/comparison/phash.js';
import { VisionError } from '../services/vision/errors.js';
import type { Recognizer } from '../services/vision/recognizer.js';
import type { ReferencePhoto } from './schemas.js';
import type { DeviceState } from './state.js';

export interface ReferenceRegistrar {
  /** Validates, stores and embeds a reference photo of the registered machine. */
  add(bytes: Buffer, declaredType: string | undefined): Promise<{ reference: Omit<ReferencePhoto, 'embedding'>; replaced: boolean; count: number }>;
}

export function createReferenceRegistrar(deps: {
  blobs: BlobStore;
  device: DeviceState;
  recognizer: () => Recognizer | undefined;
  limits: IntakeLimits;
  /** Refuses a new reference photo (507) while the data directory is full, and hears of failed writes. */
  storage?: StorageGuard;
  /** Why the in-process vision service has no recognizer (its model does not load; retried), null when it has one. */
  visionProblem?: () => { code: string; message: string } | null;
}): ReferenceRegistrar {
  return {
    async add(bytes, declaredType) {
      const recognizer = deps.recognizer();
      // With vision enabled but its model not loaded, "enable services.vision" sent the technician
      // to a setting that was already on: the model's own code says what to do (as health does).
      const problem = recognizer ? null : deps.visionProblem?.();
      if (problem && isErrorCode(problem.code)) throw new TuError(problem.code, `Reference photos are embedded by the vision model, which is not loaded now (it is retried): ${problem.message}`);
      if (!recognizer) throw new TuError('SERVICE_DISABLED', 'Reference photos are embedded by the vision model, which does not run in this agent process; enable services.vision.');
      await validateImage(bytes, declaredType, deps.limits);
      deps.storage?.assertWritable();
      const put = await deps.blobs.put(bytes).catch((err: unknown) => {
        deps.storage?.report(err, 'blob store');
        throw err;
      });
      const file = deps.blobs.pathOf(put.sha256);
      let rec;
      try {
        rec = await recognizer.recognize(file);
      } catch (err) {
        if (err instanceof VisionError && (err.code === 'IMAGE_DECODE_FAILED' || err.code === 'IMAGE_TOO_LARGE')) {
          throw new TuError('IMAGE_DECODE_FAILED', err.message.slice(0, 500));
        }
        throw err;
      }
      const hash = await phash(file).catch(() => undefined);
      const reference: ReferencePhoto = {
        sha256: put.sha256,
        ...(hash ? { phash: hash } : {}),
        embedding: rec.embedding,
        machineType: rec.machineType,
        addedAt: new Date().toISOString(),
      };
      const { replaced, count } = await deps.device.addReference(reference);
      const { embedding: _e, ...shown } = reference;
      return { reference: shown, replaced, count };
    },
  };
}
