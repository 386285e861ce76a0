import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { OpenRequest } from './writer-thread-worker.js';

/**
 * One worker thread for the writes of all the agent's SQLite files (the orchestrator's state
 * store, the intake journal, the uplink outbox), so that no fsync runs on the event loop that
 * serves HTTP and the bus.
 *
 * Why one thread and not one per file: a worker thread costs ~11 MB resident (its V8 isolate
 * and Node environment), and the gateway's idle budget is 150 MB (docs/release.md "Where the
 * memory goes"). The price is that the files' transactions run one after another on this
 * thread instead of side by side; they share one disk, whose flushes serialise anyway, and
 * each file still batches whatever arrives while another commits.
 *
 * Each file talks to its part of the thread over its own MessagePort (`open`): the thread
 * imports the file's entry module, which exports `serve(port, data)` (see
 * writer-thread-worker.ts), so a file's SQL stays in that file's own module.
 */
export class WriterThread {
  readonly #worker: Worker;
  readonly #onDeath = new Set<(err: Error) => void>();
  #dead: Error | undefined;
  #closing = false;

  constructor() {
    this.#worker = new Worker(new URL('./writer-thread-worker.js', import.meta.url));
    this.#worker.on('error', (err) => this.#die(err));
    this.#worker.on('exit', (code) => {
      if (!this.#closing) this.#die(new Error(`the SQLite writer thread exited (code ${code})`));
    });
  }

  /**
   * Starts `entry` (compiled JS, `new URL('./x-worker.js', import.meta.url)`) on the thread with
   * `data`; returns the port that speaks to it. `onDeath` is told if the thread dies (an
   * uncaught error there ends every file's writes, as a dead worker of its own would).
   */
  open(entry: URL, data: unknown, onDeath: (err: Error) => void): WriterChannel {
    const { port1, port2 } = new MessageChannel();
    if (this.#dead) {
      const err = this.#dead;
      queueMicrotask(() => onDeath(err));
    } else {
      this.#onDeath.add(onDeath);
      this.#worker.postMessage({ entry: entry.href, data, port: port2 } satisfies OpenRequest, [port2]);
    }
    return {
      port: port1,
      close: () => {
        this.#onDeath.delete(onDeath);
        port1.close();
      },
    };
  }

  /** Stops the thread (after its users have closed their files). */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    await this.#worker.terminate();
  }

  #die(err: Error): void {
    if (this.#dead) return;
    this.#dead = err;
    for (const fn of this.#onDeath) fn(err);
    this.#onDeath.clear();
  }
}

export interface WriterChannel {
  port: MessagePort;
  /** Stops listening; the entry should have closed its database first (its own 'close' message). */
  close(): void;
}
