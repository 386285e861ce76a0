/**
 * Keeps a recognizer for the vision service (service.ts): after a worker failure it starts a
 * new one, and when that start fails (model files gone or damaged, a head that will not load)
 * it keeps the typed error for steps and health and tries again with the project's backoff
 * (shared/src/retry-policy.ts) — not once per photo, each of which would load the model again
 * on a gateway with ~1 GB of memory, only to fail the same way.
 */
import { ERROR_CODES, retryDelay, systemClock, type Backoff, type Clock, type Logger, type TimerHandle } from '@tu/shared';
import { VisionError, WorkerError } from './errors.js';
import type { Recognizer } from './recognizer.js';

/**
 * Restart attempts after a failed start: 1 s, 2 s, 4 s … at most a minute apart, so a model
 * a technician puts back is picked up within a minute, while a missing one costs one failed
 * load a minute.
 */
export const RESTART_BACKOFF: Backoff = { initialDelayMs: 1_000, maxDelayMs: 60_000, jitter: 0.2 };

export interface RecognizerKeeperDeps {
  /** The recognizer started with the service; null when its start failed (`startError`). */
  initial: Recognizer | null;
  startError?: unknown;
  /** Starts a new recognizer (services/run.ts: from the config, as at start-up). */
  start: () => Promise<Recognizer>;
  /** A new recognizer serves (teach/refitter.ts applies the technicians' corrections to it). */
  onStarted?: (recognizer: Recognizer) => void;
  logger?: Logger;
  clock?: Clock;
  random?: () => number;
  backoff?: Backoff;
}

export interface RecognizerKeeper {
  /** The recognizer serving now; null while none runs (a start under way or failed). */
  current(): Recognizer | null;
  /** Why no recognizer runs: the error of the last failed start (null while one runs or starts). */
  problem(): VisionError | null;
  /** Resolves when no start is under way (the next one may be scheduled by the backoff). */
  starting(): Promise<void>;
  /** `failed` reported WORKER_FAILED: drop it and start a new one, unless that already happened. */
  replace(failed: Recognizer): void;
  /** Stops restarting and disposes the current recognizer. */
  stop(): Promise<void>;
}

/** A start error as steps and health report it: its typed code, and what to do about it. */
export function startProblem(err: unknown): VisionError {
  const cause = err instanceof VisionError ? err : new WorkerError('WORKER_FAILED', err instanceof Error ? err.message : String(err));
  // The catalogue's sentence says what a technician or operator does about the code (shared/src/errors.ts).
  return new VisionError(cause.code, `the vision model could not be loaded, so photos are not recognised: ${cause.message}. ${ERROR_CODES[cause.code].message}`, { cause: err });
}

export function createRecognizerKeeper(d: RecognizerKeeperDeps): RecognizerKeeper {
  const clock = d.clock ?? systemClock;
  const backoff = d.backoff ?? RESTART_BACKOFF;
  let current = d.initial;
  let problem: VisionError | null = d.initial ? null : startProblem(d.startError);
  let attempt: Promise<void> | null = null;
  let timer: TimerHandle | null = null;
  /** Failed starts in a row (the retry number of retry-policy.ts). */
  let failures = d.initial ? 0 : 1;
  let stopped = false;

  const tryStart = (): void => {
    timer = null;
    if (stopped) return;
    attempt = d
      .start()
      .then(
        (r) => {
          if (stopped) return void r.dispose();
          if (failures > 0) d.logger?.info({ after: failures }, 'the vision worker runs again');
          current = r;
          problem = null;
          failures = 0;
          d.onStarted?.(r);
        },
        (err: unknown) => {
          problem = startProblem(err);
          const wait = retryDelay(failures, backoff, d.random);
          failures++;
          d.logger?.error({ err, code: problem.code, retryInMs: wait }, 'starting the vision worker failed; trying again later');
          if (!stopped) timer = clock.setTimeout(tryStart, wait);
        },
      )
      .finally(() => {
        attempt = null;
      });
  };

  if (!d.initial) timer = clock.setTimeout(tryStart, retryDelay(0, backoff, d.random));

  return {
    current: () => current,
    problem: () => problem,
    starting: async () => {
      while (attempt) await attempt;
    },
    replace(failed) {
      // Several photos fail on one dead worker: the first starts the replacement, the rest wait for it.
      if (stopped || failed !== current) return;
      current = null;
      // Its worker has exited: this only drops its listeners (returns at once, recognizer.ts).
      void failed.dispose();
      d.logger?.warn('the vision worker failed; starting a new one');
      tryStart();
    },
    async stop() {
      stopped = true;
      if (timer) clock.clearTimeout(timer);
      timer = null;
      while (attempt) await attempt;
      await current?.dispose();
    },
  };
}
