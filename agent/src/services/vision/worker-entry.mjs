// Plain-JS bootstrap for the vision worker. Node 20 does not apply loader hooks
// inherited through execArgv to a worker's entry module, so when running from
// TypeScript sources (tsx) we register tsx here, then import worker.ts.
import { workerData } from 'node:worker_threads';

const { entry, registerTsx } = workerData.__bootstrap;
if (registerTsx) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(entry);
