/**
 * Runs a head refit (refit.ts) in a thread of its own, so that the vision worker (worker.ts)
 * goes on recognising photos meanwhile. A refit costs seconds (1.5–3 s for 1,000 examples on
 * an x64 core, bench/refit.bench.ts; several times that on a gateway's ARM core). Run in the
 * vision worker's own queue it held every photo behind it, and one longer than the recognizer's
 * hang deadline (recognizer.ts deadlineMs) had the worker taken for hung and restarted, refit
 * and photos lost; the restarted worker was then refitted again, and so on.
 */
import { Worker } from 'node:worker_threads';
import { deserializeError, WorkerError, type SerializedVisionError } from './errors.js';
import type { HeadFile } from './head-format.js';
import type { RefitSummary, TeachingExample } from './refit.js';

export interface RefitJob {
  base: HeadFile;
  examples: readonly TeachingExample[];
}

export type RefitOutcome = { ok: true; head: HeadFile; summary: RefitSummary } | { ok: false; error: SerializedVisionError };

/** Refits `base` towards `examples` in a new thread; rejects with a VisionError. */
export function refitInThread(job: RefitJob): Promise<{ head: HeadFile; summary: RefitSummary }> {
  return new Promise((resolve, reject) => {
    const thread = new Worker(new URL('./refit-worker.js', import.meta.url), { workerData: job, execArgv: [] });
    // A refit must not keep its parent alive: the vision worker ends on close even while one runs
    // (the refit ends with it, and the next start refits again).
    thread.unref();
    let answered = false;
    thread.once('message', (m: RefitOutcome) => {
      answered = true;
      if (m.ok) resolve({ head: m.head, summary: m.summary });
      else reject(deserializeError(m.error));
    });
    thread.once('error', (err) => {
      answered = true;
      reject(new WorkerError('WORKER_FAILED', `the head refit failed: ${err.message}`, { cause: err }));
    });
    thread.once('exit', (code) => {
      if (!answered) reject(new WorkerError('WORKER_FAILED', `the head refit stopped without an answer (exit code ${code})`));
    });
  });
}
