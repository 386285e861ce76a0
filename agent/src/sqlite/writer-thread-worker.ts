/**
 * The SQLite writer thread (writer-thread.ts): for each file the main thread opens, imports
 * that file's entry module and hands it its port. Listed as a release bundle entry in
 * scripts/release/bundle.ts, like the entries it imports.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';

/** Main thread → writer thread: start `entry` (a module URL) on `port` with `data`. */
export interface OpenRequest {
  entry: string;
  data: unknown;
  port: MessagePort;
}

/** What an entry module exports: serve the file's writes on `port`. */
export interface WriterEntry {
  serve(port: MessagePort, data: unknown): void;
}

/** Sent on a file's port when its entry cannot start (its database does not open, say); the other files go on. */
export interface OpenFailed {
  openFailed: string;
  code?: string;
}

parentPort!.on('message', (req: OpenRequest) => {
  const failed = (err: unknown): void => {
    const code = (err as { code?: unknown }).code;
    req.port.postMessage({ openFailed: (err as Error).message, ...(typeof code === 'string' ? { code } : {}) } satisfies OpenFailed);
  };
  import(req.entry).then((m: WriterEntry) => {
    try {
      m.serve(req.port, req.data);
    } catch (err) {
      failed(err);
    }
  }, failed);
});
