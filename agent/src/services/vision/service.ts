import { recognitionResult, serveStep, StepError, type BusClient, type Logger, type RecognitionResult } from '@tu/shared';
import { writeEmbedding } from '../../blobs/derived.js';
import type { BlobStore } from '../../blobs/store.js';
import { VisionError } from './errors.js';
import type { Recognizer } from './recognizer.js';

export interface VisionServiceDeps {
  /** Bus client of svc-ai-vision-adapter announcing `analysis.recognition.request`. */
  bus: BusClient;
  recognizer: Recognizer;
  blobs: BlobStore;
  logger?: Logger;
  /** Replaces a crashed worker (WORKER_FAILED); without it the crash stays retryable but permanent. */
  recreate?: () => Promise<Recognizer>;
}

export interface RunningService {
  stop(): Promise<void>;
}

/** Maps vision library errors to step failures: bad images are final, worker trouble is retryable. */
export function visionStepError(err: unknown, redact: { path: string; as: string } = { path: '', as: '' }): StepError {
  // Failure reasons travel to the cloud: name the image by its hash, not by its path on the device.
  const msg = (m: string) => (redact.path ? m.split(redact.path).join(redact.as) : m);
  if (err instanceof VisionError) {
    switch (err.code) {
      case 'IMAGE_DECODE_FAILED':
      case 'IMAGE_TOO_LARGE':
      case 'IMAGE_NOT_FOUND':
        return new StepError(err.code, msg(err.message), false);
      case 'WORKER_FAILED':
      case 'RECOGNIZER_DISPOSED':
        return new StepError(err.code, msg(err.message), true);
      default:
        return new StepError(err.code, msg(err.message), false);
    }
  }
  return new StepError('INTERNAL_ERROR', msg(err instanceof Error ? err.message : String(err)), true);
}

/** svc-ai-vision-adapter: answers recognition commands with the recognizer (worker thread). */
export async function startVisionService(deps: VisionServiceDeps): Promise<RunningService> {
  let recognizer = deps.recognizer;
  let replacing: Promise<void> | null = null;
  const unsubscribe = await serveStep(deps.bus, 'recognition', async (cmd): Promise<RecognitionResult> => {
    const file = deps.blobs.pathOf(cmd.data.image.sha256);
    try {
      // A photo retried after a worker crash waits for the new worker instead of failing against the dead one.
      if (replacing) await replacing;
      const r = await recognizer.recognize(file);
      // The vector stays in the blob store beside the photo; the result on the bus carries its reference (docs/messages.md).
      const embedding = await writeEmbedding(deps.blobs, cmd.data.image.sha256, r.model.id, r.embedding).catch((err: unknown) => {
        throw new StepError('STORAGE_FAILED', `the embedding could not be stored beside the photo (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); free space in dataDir`, true);
      });
      // The head is named by its id; its label list (GET /api/v1/health) would repeat in every result.
      const head = r.model.head ? { id: r.model.head.id, trainedAt: r.model.head.trainedAt } : null;
      return recognitionResult.parse({ ...r, model: { ...r.model, head }, embedding });
    } catch (err) {
      deps.logger?.warn({ err, analysisId: cmd.data.analysisId }, 'recognition failed');
      const stepErr = visionStepError(err, { path: file, as: `sha256:${cmd.data.image.sha256.slice(0, 12)}` });
      if (stepErr.code === 'WORKER_FAILED' && deps.recreate && !replacing) {
        deps.logger?.warn({ err }, 'vision worker failed; starting a new one');
        replacing = deps
          .recreate()
          .then((r) => {
            recognizer = r;
          })
          .catch((e: unknown) => deps.logger?.error({ err: e }, 'restarting the vision worker failed'))
          .finally(() => {
            replacing = null;
          });
      }
      throw stepErr;
    }
  });
  await deps.bus.markReady();
  return {
    async stop() {
      await unsubscribe();
      await replacing;
    },
  };
}
