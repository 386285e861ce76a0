import fs from 'node:fs';
import path from 'node:path';
import type { AgentConfig } from '@tu/firmware-config';
import { STEPS, systemClock, TuError, type BusClient, type Clock, type Logger } from '@tu/shared';
import type { BlobStore } from '../blobs/store.js';
import { connectService, type BusIdentity } from '../bus.js';
import type { PhotoHistory } from '../device/history.js';
import type { DeviceState } from '../device/state.js';
import { startComparisonService } from './comparison/service.js';
import { startMetadataService } from './metadata/service.js';
import { VisionError } from './vision/errors.js';
import { createRecognizer, type Recognizer } from './vision/recognizer.js';
import { startVisionService } from './vision/service.js';
import { appLayout } from '../release/layout.js';
import { moveAside, type SetAside } from '../fs/set-aside.js';

export type AnalysisServiceName = 'vision' | 'comparison' | 'metadata';
export const ANALYSIS_SERVICES: readonly AnalysisServiceName[] = ['vision', 'comparison', 'metadata'];

const STEP_OF = { vision: 'recognition', comparison: 'comparison', metadata: 'metadata' } as const;

/** Head file name the release puts beside the model files (scripts/release/package.ts copies dist/head/default-head.json there). */
export const HEAD_BESIDE_MODEL = 'head.json';

/**
 * Model directory and head file from config (MODEL_DIR is applied by the config loader).
 * Without model.dir a release uses the model it ships (release/layout.ts).
 * Head: the first file that exists of model.headPath (developer profile: the head
 * `npm run build:head` writes), {dataDir}/head.json (trained on this gateway),
 * {model dir}/head.json (the release ships the default head there). None → no head (health: degraded).
 */
export function modelPaths(config: AgentConfig): { modelDir: string; headPath: string | undefined } {
  const { modelDir, heads } = modelFiles(config);
  return { modelDir, headPath: heads[0] };
}

/** The model directory and every head file that exists, in the order of modelPaths. */
function modelFiles(config: AgentConfig): { modelDir: string; heads: string[] } {
  const modelDir = config.model.dir ?? appLayout().modelDir;
  if (!modelDir) throw new TuError('CONFIG_INVALID', 'model.dir is not set: set it in the config file or the MODEL_DIR environment variable (the model directory, e.g. ../shared/models/mobilenet_v2_100_224_quant)');
  const candidates = [config.model.headPath, path.join(config.dataDir, 'head.json'), path.join(modelDir, HEAD_BESIDE_MODEL)];
  const heads = candidates.filter((c): c is string => c !== undefined && fs.existsSync(c)).map((c) => path.resolve(c));
  return { modelDir: path.resolve(modelDir), heads: [...new Set(heads)] };
}

/** A head file that would not load (HEAD_INVALID), renamed away so that the next start does not trip on it again. */
export interface RecognizerStartOptions {
  /** A head candidate failed to load and the next one is used (health names it). */
  onHeadSetAside?: (h: SetAside) => void;
  clock?: Clock;
  logger?: Logger;
}

/**
 * The one rule for how long the vision worker may leave waiting recognitions unanswered before
 * it is taken as hung and restarted (vision/recognizer.ts deadlineMs): 80 % of the recognition
 * step's timeout (orchestrator.plan.recognition.timeoutMs), so that the worker is restarted and
 * the attempt fails as WORKER_FAILED (retried on the new worker) before the orchestrator gives
 * the attempt up as STEP_TIMEOUT. Undefined when the plan has no recognition step.
 */
export function recognitionDeadlineMs(config: AgentConfig): number | undefined {
  const step = config.orchestrator.plan.find((p) => p.step === 'recognition');
  return step ? Math.floor(step.timeoutMs * 0.8) : undefined;
}

/**
 * Starts the recognizer with the first head candidate that loads. A damaged head (a power cut
 * while a technician's refit head was written, a truncated copy) must not keep vision, let
 * alone the gateway, from starting: it is renamed to `<file>.bad-<time>` (kept for inspection,
 * and not tried again on every start) and the next candidate, in the end the shipped head, is
 * used. A head trained for another model (HEAD_MISMATCH: a refit head from before a model
 * update) is not damaged and would fit again if the model were rolled back, so it stays where it
 * is and is passed over for the next candidate; vision stays off for want of a head only when
 * the last candidate does not fit either. A model that will not load still fails.
 */
export async function startConfiguredRecognizer(config: AgentConfig, o: RecognizerStartOptions = {}): Promise<Recognizer> {
  const { modelDir, heads } = modelFiles(config);
  const deadlineMs = recognitionDeadlineMs(config);
  const clock = o.clock ?? systemClock;
  for (let i = 0; ; i++) {
    const headPath = heads[i];
    try {
      return await createRecognizer({
        modelDir,
        ...(headPath ? { headPath } : {}),
        ...(config.model.backend ? { backend: config.model.backend } : {}),
        maxPixels: config.limits.maxPixels,
        ...(deadlineMs !== undefined ? { deadlineMs } : {}),
      });
    } catch (err) {
      if (!headPath || !(err instanceof VisionError) || (err.code !== 'HEAD_INVALID' && err.code !== 'HEAD_MISMATCH')) throw err;
      if (err.code === 'HEAD_MISMATCH') {
        if (i === heads.length - 1) throw err;
        o.logger?.error({ err, file: headPath }, 'a head file was trained for another model; passed over, the next head is used');
        o.onHeadSetAside?.({
          what: 'machine-type head',
          file: headPath,
          movedTo: null,
          fault: 'mismatch',
          reason: `HEAD_MISMATCH: ${err.message.split('\n')[0]}`,
          replacedBy: "the next head is used (the shipped one, refitted to the technicians' labels this model embedded)",
          at: new Date(clock.now()).toISOString(),
        });
        continue;
      }
      let movedTo: string | null;
      try {
        movedTo = moveAside(headPath, { now: clock.now() });
      } catch (renameErr) {
        o.logger?.warn({ err: renameErr, file: headPath }, 'a head file that does not load could not be renamed away');
        movedTo = null;
      }
      o.logger?.error({ err, file: headPath, movedTo }, 'a head file does not load; set aside, the next head is used');
      o.onHeadSetAside?.({
        what: 'machine-type head',
        file: headPath,
        movedTo,
        reason: `HEAD_INVALID: ${err.message.split('\n')[0]}`,
        replacedBy: "the next head is used (the shipped one, refitted to the technicians' labels)",
        at: new Date(clock.now()).toISOString(),
      });
    }
  }
}

export interface ServiceContext {
  config: AgentConfig;
  identity: BusIdentity;
  blobs: BlobStore;
  device: DeviceState;
  history: PhotoHistory;
  logger: Logger;
  /** Reuse this recognizer (in-process: shared with reference registration). */
  recognizer?: Recognizer;
  /** Re-read device state before each comparison (a service in its own process). */
  reloadDevice?: boolean;
  /**
   * A crashed vision worker was replaced: the new one runs the head as loaded from its file,
   * without the technicians' corrections (teach/refitter.ts must apply them again).
   */
  onRecognizerReplaced?: (recognizer: Recognizer) => void;
  /** Timers of the vision worker's restarts (vision/keeper.ts). */
  clock?: Clock;
  /** A head file that does not load was set aside at a restart (startConfiguredRecognizer). */
  onHeadSetAside?: (h: SetAside) => void;
  /** In-process: the agent could not start the recognizer (ctx.recognizer absent); the service retries. */
  recognizerStartError?: unknown;
}

export interface RunningAnalysisService {
  name: AnalysisServiceName;
  bus: BusClient;
  recognizer?: Recognizer;
  /** Vision: why photos are not recognised (a failed worker start, retried with backoff); null when serving. */
  visionProblem?: () => VisionError | null;
  stop(): Promise<void>;
}

/** Connects one analysis service to the bus (its own client and instance id) and serves its step. */
export async function runAnalysisService(name: AnalysisServiceName, ctx: ServiceContext): Promise<RunningAnalysisService> {
  const def = STEPS[STEP_OF[name]];
  const bus = await connectService(ctx.identity, def.service, { handles: [def.command] });
  try {
    if (name === 'vision') {
      const startOpts: RecognizerStartOptions = { logger: ctx.logger, ...(ctx.clock ? { clock: ctx.clock } : {}), ...(ctx.onHeadSetAside ? { onHeadSetAside: ctx.onHeadSetAside } : {}) };
      // A model that does not load keeps vision off, not the service: it answers MODEL_* and retries (vision/keeper.ts).
      const first = ctx.recognizer
        ? { recognizer: ctx.recognizer }
        : ctx.recognizerStartError !== undefined
          ? { recognizer: null, startError: ctx.recognizerStartError }
          : await startConfiguredRecognizer(ctx.config, startOpts).then(
              (recognizer) => ({ recognizer }),
              (startError: unknown) => {
                if (!(startError instanceof VisionError)) throw startError;
                return { recognizer: null, startError };
              },
            );
      const svc = await startVisionService({
        bus,
        ...first,
        blobs: ctx.blobs,
        logger: ctx.logger,
        recreate: () => startConfiguredRecognizer(ctx.config, startOpts),
        ...(ctx.onRecognizerReplaced ? { onReplaced: ctx.onRecognizerReplaced } : {}),
        ...(ctx.clock ? { clock: ctx.clock } : {}),
      });
      return {
        name,
        bus,
        get recognizer() {
          return svc.recognizer() ?? undefined;
        },
        visionProblem: () => svc.problem(),
        async stop() {
          // Disposes the recognizer serving now, the one passed in or its replacement (vision/keeper.ts).
          await svc.stop();
          await bus.close();
        },
      };
    }
    const svc =
      name === 'comparison'
        ? await startComparisonService({
            bus,
            blobs: ctx.blobs,
            history: ctx.history,
            references: async () => {
              if (ctx.reloadDevice) await ctx.device.reload();
              return ctx.device.references();
            },
            thresholds: ctx.config.comparison.thresholds,
          })
        : await startMetadataService({
            bus,
            blobs: ctx.blobs,
            thresholds: ctx.config.metadata.thresholds,
            maxPixels: ctx.config.limits.maxPixels,
            ...(ctx.config.metadata.assumedUtcOffset ? { assumedUtcOffset: ctx.config.metadata.assumedUtcOffset } : {}),
          });
    return {
      name,
      bus,
      async stop() {
        await svc.stop();
        await bus.close();
      },
    };
  } catch (err) {
    await bus.close();
    throw err;
  }
}
