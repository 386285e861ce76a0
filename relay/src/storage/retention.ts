import type { Clock, Logger, TimerHandle } from '@tu/shared';
import type { Storage } from './types.js';

export interface RetentionOptions {
  /** Events received longer ago than this are deleted; 0 keeps them forever. */
  eventsMaxAgeDays: number;
  intervalMs: number;
  batchSize: number;
  maxBatchesPerRun: number;
}

export interface RetentionStats {
  runs: number;
  deleted: number;
  errors: number;
  lastRunAt: number | undefined;
}

const DAY_MS = 24 * 3600_000;

/**
 * Deletes old events on a timer (injected clock), in small batches of the oldest rows by primary
 * key (SqlStorage.deleteEventsBefore), each its own short statement: ingest's inserts never wait
 * behind one long delete, and a run stops after `maxBatchesPerRun` batches so a large backlog is
 * worked off over several runs. Events are the only table that grows with every message; the
 * machine, analysis and label rows the dashboard shows are kept.
 * Deleting an event also forgets its id: a gateway re-sending an event older than the retention
 * age would have it stored again (an outbox holds events for far less time than that).
 */
export class EventRetention {
  readonly stats: RetentionStats = { runs: 0, deleted: 0, errors: 0, lastRunAt: undefined };
  #timer: TimerHandle | undefined;
  #running: Promise<number> | undefined;
  #stopped = false;

  constructor(
    private readonly deps: { storage: Pick<Storage, 'deleteEventsBefore'>; clock: Clock; logger: Logger },
    private readonly opts: RetentionOptions,
  ) {}

  get enabled(): boolean {
    return this.opts.eventsMaxAgeDays > 0;
  }

  /** Schedules the first run one interval from now (not at start: a starting fleet of instances should not all delete at once). */
  start(): void {
    if (!this.enabled || this.#stopped) return;
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) this.deps.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /** One run: deletes batch after batch until a batch comes back short, the run's cap, or stop. Resolves the rows deleted. */
  runOnce(): Promise<number> {
    this.#running ??= this.#run().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #run(): Promise<number> {
    if (!this.enabled) return 0;
    const now = this.deps.clock.now();
    const before = new Date(now - this.opts.eventsMaxAgeDays * DAY_MS).toISOString();
    let total = 0;
    try {
      for (let i = 0; i < this.opts.maxBatchesPerRun && !this.#stopped; i++) {
        const n = await this.deps.storage.deleteEventsBefore(before, this.opts.batchSize);
        total += n;
        if (n < this.opts.batchSize) break;
        // Let queued ingest writes go between batches.
        await new Promise((r) => setImmediate(r));
      }
    } catch (err) {
      this.stats.errors++;
      this.deps.logger.warn({ err: (err as Error).message, deleted: total }, 'event retention failed; next run retries');
    }
    this.stats.runs++;
    this.stats.deleted += total;
    this.stats.lastRunAt = now;
    if (total > 0) this.deps.logger.info({ deleted: total, before }, 'deleted old events');
    return total;
  }

  #schedule(): void {
    this.#timer = this.deps.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.runOnce().finally(() => {
        if (!this.#stopped) this.#schedule();
      });
    }, this.opts.intervalMs);
  }
}
