/**
 * Public entry point: createRecognizer() starts a worker thread that loads the
 * backbone (and optional head) and answers recognize() calls. The main event
 * loop only posts messages; decoding and inference happen in the worker.
 *
 * The worker is the compiled worker.js beside this file (agent/dist, built by
 * `npm run build`; the release bundle keeps the same name beside its entry).
 */
import { Worker } from 'node:worker_threads';
import { systemClock, type Clock, type TimerHandle } from '@tu/shared';
import type { BackendName } from './backend.js';
import { deserializeError, WorkerError } from './errors.js';
import type { FitMode, ImageInput } from './preprocess.js';
import type { RefitSummary, TeachingExample } from './refit.js';
import type { RecognitionResult, RecognizerInfo } from './types.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerStats } from './worker-protocol.js';

export interface RecognizerOptions {
  /** Model directory (manifest.ts resolves its manifest), e.g. ../shared/models/mobilenet_v2_100_224_quant. */
  modelDir: string;
  /** Trained head JSON (agent/scripts/train-head.ts). Without it, only ImageNet mapping is available. */
  headPath?: string;
  backend?: BackendName;
  /** Images declaring more pixels are refused before decoding (default 50e6). */
  maxPixels?: number;
  /** Without a head: resize fit and flip-TTA (a head carries its own). */
  fit?: FitMode;
  tta?: boolean;
  /**
   * While recognitions wait, the worker must answer one of them (or anything) within this many
   * ms; else it is taken as hung (stuck in native decoding or inference, where it answers nothing
   * ever again), terminated, and every waiter fails with WORKER_FAILED, so that its owner starts a
   * new one (vision/keeper.ts). The agent derives it from the recognition step's timeout
   * (services/run.ts recognitionDeadlineMs). Absent: no deadline.
   */
  deadlineMs?: number;
  /** Timers of the deadline. */
  clock?: Clock;
}

export interface Recognizer {
  recognize(input: string | Buffer): Promise<RecognitionResult>;
  info(): RecognizerInfo;
  /** Memory of the worker (heap, tfjs tensors, wasm heap), for benchmarks and diagnostics. */
  stats(): Promise<WorkerStats>;
  /**
   * Refits the head towards technicians' examples (refit.ts) in a thread beside the worker's
   * photos (refit-thread.ts); every recognition that starts after this resolves uses the new
   * head. Rejects without a loaded head.
   */
  teach(examples: readonly TeachingExample[]): Promise<RefitSummary>;
  dispose(): Promise<void>;
}

export async function createRecognizer(options: RecognizerOptions): Promise<Recognizer> {
  const init: WorkerInit = {
    modelDir: options.modelDir,
    headPath: options.headPath,
    backend: options.backend,
    maxPixels: options.maxPixels,
    fit: options.fit,
    tta: options.tta,
  };
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init, execArgv: [] });
  const pending = new Map<number, { resolve: (r: RecognitionResult) => void; reject: (e: Error) => void }>();
  const statsWaiters = new Map<number, { resolve: (s: WorkerStats) => void; reject: (e: Error) => void }>();
  const teachWaiters = new Map<number, { resolve: (s: RefitSummary) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let closed = false;
  /** The worker thread has ended: it answers nothing more and emits no second 'exit'. */
  let exited = false;
  let fatal: Error | null = null;
  const clock = options.clock ?? systemClock;
  let deadline: TimerHandle | null = null;
  const disarm = (): void => {
    if (deadline) clock.clearTimeout(deadline);
    deadline = null;
  };

  // Every waiter is rejected, not only recognitions: a teach() left pending would keep the
  // refitter's loop (teach/refitter.ts) running for ever, and with it the agent's stop().
  const failAll = (err: Error): void => {
    fatal = err;
    disarm();
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    for (const w of statsWaiters.values()) w.reject(err);
    statsWaiters.clear();
    for (const w of teachWaiters.values()) w.reject(err);
    teachWaiters.clear();
  };

  let info = await new Promise<RecognizerInfo>((resolve, reject) => {
    const onMessage = (m: FromWorker): void => {
      if (m.type === 'ready') {
        cleanup();
        resolve(m.info);
      } else if (m.type === 'init-error') {
        cleanup();
        void worker.terminate();
        reject(deserializeError(m.error));
      }
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new WorkerError('WORKER_FAILED', `vision worker failed to start: ${err.message}`, { cause: err }));
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new WorkerError('WORKER_FAILED', `vision worker exited during start-up (code ${code})`));
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });

  // Measured from the worker's last answer, not from each post: photos queued behind others are
  // not late, a worker that answers nothing at all is hung.
  const arm = (): void => {
    disarm();
    const ms = options.deadlineMs;
    if (ms === undefined || pending.size === 0 || fatal || closed) return;
    deadline = clock.setTimeout(() => {
      deadline = null;
      failAll(new WorkerError('WORKER_FAILED', `the vision worker did not answer for ${ms} ms (hung in decoding or inference) and was restarted; the photo is analysed again`));
      void worker.terminate();
    }, ms);
  };
  worker.on('message', (m: FromWorker) => {
    // Any answer shows the worker alive: the deadline starts again for what still waits.
    queueMicrotask(arm);
    if (m.type === 'stats') {
      statsWaiters.get(m.id)?.resolve(m.stats);
      statsWaiters.delete(m.id);
      return;
    }
    if (m.type === 'taught') {
      info = m.info;
      teachWaiters.get(m.id)?.resolve(m.summary);
      teachWaiters.delete(m.id);
      return;
    }
    if (m.type === 'error' && teachWaiters.has(m.id)) {
      teachWaiters.get(m.id)?.reject(deserializeError(m.error));
      teachWaiters.delete(m.id);
      return;
    }
    if (m.type !== 'result' && m.type !== 'error') return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.type === 'result') p.resolve(m.result);
    else p.reject(deserializeError(m.error));
  });
  worker.on('error', (err) => {
    if (!fatal) failAll(new WorkerError('WORKER_FAILED', `vision worker crashed: ${err.message}`, { cause: err }));
  });
  worker.on('exit', (code) => {
    exited = true;
    // Read by technicians in a failed analysis: say what happens next, not what a caller of this library must do.
    // After a deadline (hung worker) its reason stands: the exit is the terminate() it caused.
    if (!closed && !fatal) failAll(new WorkerError('WORKER_FAILED', `the vision worker stopped unexpectedly (exit code ${code}); the vision service starts a new one and the photo is analysed again`));
  });
  // Do not keep the process alive just for an idle recognizer.
  worker.unref();

  return {
    info: () => info,
    stats(): Promise<WorkerStats> {
      if (closed || fatal) return Promise.reject(fatal ?? new WorkerError('RECOGNIZER_DISPOSED', 'recognizer was disposed'));
      const id = nextId++;
      return new Promise<WorkerStats>((resolve, reject) => {
        statsWaiters.set(id, { resolve, reject });
        worker.postMessage({ type: 'stats', id } satisfies ToWorker);
      });
    },
    teach(examples: readonly TeachingExample[]): Promise<RefitSummary> {
      if (closed || fatal) return Promise.reject(fatal ?? new WorkerError('RECOGNIZER_DISPOSED', 'recognizer was disposed'));
      const id = nextId++;
      const copies = examples.map((e) => ({ label: e.label, embedding: Float32Array.from(e.embedding) }));
      return new Promise<RefitSummary>((resolve, reject) => {
        teachWaiters.set(id, { resolve, reject });
        // The copies are ours: transfer their buffers instead of cloning 1,000 × 1,280 floats.
        worker.postMessage({ type: 'teach', id, examples: copies } satisfies ToWorker, copies.map((c) => c.embedding.buffer as ArrayBuffer));
      });
    },
    recognize(input: ImageInput): Promise<RecognitionResult> {
      if (closed) return Promise.reject(new WorkerError('RECOGNIZER_DISPOSED', 'the vision service was stopping when the photo arrived; it is analysed again once the service runs'));
      if (fatal) return Promise.reject(fatal);
      const id = nextId++;
      return new Promise<RecognitionResult>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        if (!deadline) arm();
        worker.ref();
        const done = (): void => {
          if (pending.size === 0) worker.unref();
        };
        const p = pending.get(id);
        if (p) {
          pending.set(id, {
            resolve: (r) => (p.resolve(r), done()),
            reject: (e) => (p.reject(e), done()),
          });
        }
        let msg: ToWorker;
        if (typeof input === 'string') msg = { type: 'recognize', id, path: input };
        else {
          // Copy into a standalone buffer we can transfer (Node Buffers may share a pool).
          const bytes = new Uint8Array(input.byteLength);
          bytes.set(input);
          msg = { type: 'recognize', id, bytes };
          worker.postMessage(msg, [bytes.buffer]);
          return;
        }
        worker.postMessage(msg);
      });
    },
    async dispose(): Promise<void> {
      if (closed) return;
      closed = true;
      disarm();
      failAll(new WorkerError('RECOGNIZER_DISPOSED', 'the vision service was stopped while the photo waited; it is analysed again once the service runs'));
      // An exited worker never emits 'exit' again: waiting for it would never end (agent.stop() after a crash).
      if (exited) return;
      worker.postMessage({ type: 'close' } satisfies ToWorker);
      const timer = setTimeout(() => void worker.terminate(), 2000);
      await new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      clearTimeout(timer);
    },
  };
}
