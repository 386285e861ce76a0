/**
 * Worker-thread entry: owns the backbone (ONNX Runtime or tfjs) and head so that
 * inference never blocks the service's event loop. Photos are processed one at a time; a
 * head refit runs beside them in a thread of its own (refit-thread.ts). tfjs is not imported
 * here: the engine loads it only for TF.js models.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createVisionEngine, type VisionEngine } from './engine.js';
import { serializeError } from './errors.js';
import { refitInThread } from './refit-thread.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerStats } from './worker-protocol.js';

const MB = 2 ** 20;
function stats(): WorkerStats {
  const m = process.memoryUsage();
  const e = engine?.memory() ?? {};
  return {
    heapUsedMB: m.heapUsed / MB,
    heapTotalMB: m.heapTotal / MB,
    externalMB: m.external / MB,
    arrayBuffersMB: m.arrayBuffers / MB,
    numTensors: e['numTensors'] ?? null,
    tensorMB: e['tensorMB'] ?? null,
    wasmHeapMB: e['wasmHeapMB'] ?? null,
  };
}

const port = parentPort;
if (!port) throw new Error('vision worker.ts must be started as a worker thread');
const post = (m: FromWorker): void => port.postMessage(m);

let engine: VisionEngine | null = null;
let queue: Promise<void> = Promise.resolve();
let refits: Promise<void> = Promise.resolve();

try {
  engine = await createVisionEngine(workerData as WorkerInit);
  post({ type: 'ready', info: { ...engine.info(), thread: 'worker' } });
} catch (err) {
  post({ type: 'init-error', error: serializeError(err) });
}

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'close') {
    queue = queue.then(() => {
      engine?.dispose();
      engine = null;
      port.close();
    });
    return;
  }
  if (msg.type === 'stats') {
    queue = queue.then(() => post({ type: 'stats', id: msg.id, stats: stats() }));
    return;
  }
  if (msg.type === 'teach') {
    // Beside the photos, not in their queue (refit-thread.ts says why); one refit at a time.
    // The new head joins the photo queue: a photo already started ends with the head it began
    // with, and every photo after the 'taught' answer is recognised with the new one.
    refits = refits.then(async () => {
      try {
        if (!engine) throw new Error('vision engine failed to initialise');
        const { head, summary } = await refitInThread({ base: engine.refitBase(), examples: msg.examples });
        queue = queue.then(() => {
          if (!engine) return;
          engine.useHead(head);
          post({ type: 'taught', id: msg.id, summary, info: { ...engine.info(), thread: 'worker' } });
        });
      } catch (err) {
        post({ type: 'error', id: msg.id, error: serializeError(err) });
      }
    });
    return;
  }
  queue = queue.then(async () => {
    try {
      if (!engine) throw new Error('vision engine failed to initialise');
      const input = msg.path ?? Buffer.from(msg.bytes ?? new Uint8Array());
      post({ type: 'result', id: msg.id, result: await engine.recognize(input) });
    } catch (err) {
      post({ type: 'error', id: msg.id, error: serializeError(err) });
    }
  });
});
