/**
 * Thread entry of one head refit (refit.ts), started by refit-thread.ts from the vision worker.
 * It gets the head to start from and the examples in workerData, answers once and ends.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from './errors.js';
import { refitHead } from './refit.js';
import type { RefitJob, RefitOutcome } from './refit-thread.js';

const port = parentPort;
if (!port) throw new Error('vision refit-worker.ts must be started as a worker thread');
const { base, examples } = workerData as RefitJob;
let outcome: RefitOutcome;
try {
  outcome = { ok: true, ...refitHead(base, examples) };
} catch (err) {
  outcome = { ok: false, error: serializeError(err) };
}
port.postMessage(outcome);
