import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fromSubscribers, type FromSubscribers, type SubscriberStats, type ToSubscribers } from './subscriber-messages.js';

/**
 * Dashboard clients watching gateways' events, in a process of their own
 * (subscriber-process.ts says why), so every event they receive has crossed one instance's ingest
 * and the Redis fan-out. Latency = arrival − the event's `time` (stamped by the simulator when
 * first sent; same machine, same clock).
 */
interface Sample {
  /** Arrival, ms since the epoch. */
  at: number;
  ms: number;
}

export class Subscribers {
  readonly latencies: Sample[] = [];
  stats: SubscriberStats = { received: 0, duplicates: 0, reconnects: 0, errors: 0, active: 0 };
  #child: ChildProcess | undefined;
  #reported: ((m: FromSubscribers) => void)[] = [];

  /** `watch`: per subscriber, the gateways it watches. */
  constructor(private readonly opts: { httpUrls: string[]; token: string; watch: string[][] }) {}

  /** The subscribers' process (its CPU counts with the simulator's). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get active(): number {
    return this.stats.active;
  }

  /** Opens one subscription per watched gateway; resolves once all are acknowledged or after maxMs. */
  async start(maxMs: number): Promise<void> {
    // tsx's loader in the child too: the bench runs from source.
    const child = fork(fileURLToPath(new URL('./subscriber-process.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child = child;
    child.on('message', (raw) => {
      const m = fromSubscribers.safeParse(raw);
      if (!m.success) return void this.stats.errors++;
      for (const [at, ms] of m.data.samples) this.latencies.push({ at, ms });
      this.stats = m.data.stats;
      // Only an answer to a question (or the last report) resolves it: a periodic report may have left before the question arrived.
      if (m.data.type !== 'report') for (const r of this.#reported.splice(0)) r(m.data);
    });
    this.#send({ type: 'start', httpUrls: this.opts.httpUrls, token: this.opts.token, watch: this.opts.watch });
    const t0 = Date.now();
    while (this.active < this.opts.watch.length && Date.now() - t0 < maxMs) await new Promise((r) => setTimeout(r, 100));
  }

  /** Takes in everything that arrived until now (bounded: 5 s). */
  async flush(): Promise<void> {
    await this.#ask({ type: 'report' });
  }

  async close(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    await this.#ask({ type: 'close' });
    // Bounded: a child that does not end by itself is killed.
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }

  #send(m: ToSubscribers): void {
    this.#child?.send(m);
  }

  #ask(m: ToSubscribers): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      this.#reported.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.#send(m);
    });
  }
}
