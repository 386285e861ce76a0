import { recognitionResult, serveStep, StepError, type BusClient, type Clock, type Logger, type RecognitionResult } from '@tu/shared';
import { writeEmbedding } from '../../blobs/derived.js';
import type { BlobStore } from '../../blobs/store.js';
import { VisionError, WorkerError } from './errors.js';
import { createRecognizerKeeper } from './keeper.js';
import type { Recognizer } from './recognizer.js';

export interface VisionServiceDeps {
  /** Bus client of svc-ai-vision-adapter announcing `analysis.recognition.request`. */
  bus: BusClient;
  /** The recognizer started with the service; null when its start failed (`startError`, then retried). */
  recognizer: Recognizer | null;
  startError?: unknown;
  blobs: BlobStore;
  logger?: Logger;
  /** Replaces a crashed worker (WORKER_FAILED); without it the crash stays retryable but permanent. */
  recreate?: () => Promise<Recognizer>;
  /** A replacement serves (teach/refitter.ts applies the technicians' corrections again). */
  onReplaced?: (recognizer: Recognizer) => void;
  clock?: Clock;
  random?: () => number;
}

export interface RunningService {
  /** The recognizer serving now (null while none runs: see problem()). */
  recognizer(): Recognizer | null;
  /** Why photos are not recognised (a failed worker start, retried with backoff); null when serving. */
  problem(): VisionError | null;
  stop(): Promise<void>;
}

/** Maps vision library errors to step failures: bad images are final, worker trouble is retryable. */
export function visionStepError(err: unknown, redact: { path: string; as: string } = { path: '', as: '' }): StepError {
  // Failure reasons travel to the cloud: name the image by its hash, not by its path on the device.
  const msg = (m: string) => (redact.path ? m.split(redact.path).join(redact.as) : m);
  // Already a step failure (the embedding could not be stored): its code and advice stand.
  if (err instanceof StepError) return new StepError(err.code, msg(err.message), err.retryable);
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
  const recreate = deps.recreate;
  const keeper = createRecognizerKeeper({
    initial: deps.recognizer,
    startError: deps.startError,
    // Without a way to start one, a failed worker stays failed (its WORKER_FAILED answers stay retryable).
    start: recreate ?? (() => Promise.reject(new WorkerError('WORKER_FAILED', 'the vision worker failed and this service cannot start a new one; restart the agent'))),
    ...(deps.onReplaced ? { onStarted: deps.onReplaced } : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
    ...(deps.clock ? { clock: deps.clock } : {}),
    ...(deps.random ? { random: deps.random } : {}),
  });
  const unsubscribe = await serveStep(deps.bus, 'recognition', async (cmd): Promise<RecognitionResult> => {
    const file = deps.blobs.pathOf(cmd.data.image.sha256);
    let recognizer: Recognizer | null = null;
    try {
      // A photo retried after a worker crash waits for the new worker instead of failing against the dead one.
      await keeper.starting();
      recognizer = keeper.current();
      // No worker, and its start failed: answer with the cause (MODEL_NOT_FOUND, HEAD_INVALID, …), final
      // for this photo (visionStepError), while the keeper retries the start with backoff.
      if (!recognizer) throw keeper.problem() ?? new WorkerError('WORKER_FAILED', 'the vision worker is being restarted; the photo is analysed again');
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
      if (stepErr.code === 'WORKER_FAILED' && recognizer && recreate) keeper.replace(recognizer);
      throw stepErr;
    }
  });
  await deps.bus.markReady();
  return {
    recognizer: () => keeper.current(),
    problem: () => keeper.problem(),
    async stop() {
      await unsubscribe();
      await keeper.stop();
    },
  };
}
