import type Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import { systemClock, type Clock, type TimerHandle } from '@tu/shared';
import { isStorageError } from '../fs/storage-guard.js';
import { isOpen, type AnalysisState } from './state.js';
import { openStateDb, type StoreRow } from './store-db.js';

export interface StateStoreStats {
  commits: number;
  rowsWritten: number;
  pendingRows: number;
  lastCommitMs: number;
  /** Batches that failed on a full or failing disk and were kept to be written again. */
  writeRetries: number;
  /** The last write error while a batch waits to be retried (undefined: writes go through). */
  retrying: string | undefined;
}

export interface AnalysisListItem {
  analysisId: string;
  status: string;
  createdAt: string;
  updatedAt: string;
  /** The uploaded file's name, when the client gave one. */
  fileName?: string;
  /** The recognised machine type (`unknown` included), once recognition has a result. */
  machineType?: string;
}

type ListRow = { id: string; status: string; created_at: number; updated_at: number; file_name: string | null; machine_type: string | null };
/** The list reads two fields out of the state JSON in SQLite: no full row parse (thumbnails, embeddings) per item. */
const LIST_COLUMNS = "id, status, created_at, updated_at, json_extract(state, '$.fileName') AS file_name, json_extract(state, '$.results.recognition.machineType') AS machine_type";

/**
 * The orchestrator's durable state. `save` never blocks the caller: rows are coalesced
 * per analysis and written in batches by a worker thread; the promise resolves once
 * the row is committed (and fsynced with `full` durability).
 */
export interface StateStore {
  loadOpen(): AnalysisState[];
  get(id: string): AnalysisState | undefined;
  list(opts: { limit: number; status?: string }): AnalysisListItem[];
  save(state: AnalysisState): Promise<void>;
  /** Marks an analysis closed (its terminal event was published) without rewriting its row. */
  markPublished(id: string): Promise<void>;
  readonly stats: StateStoreStats;
  /**
   * Every analysis's photo, oldest first after `afterRow` (a cursor: pass the last `row` seen),
   * for quota eviction. `finished`: its terminal event was published (the row is closed).
   */
  imagesByAge(afterRow: number, limit: number): { row: number; analysisId: string; sha256: string; finished: boolean; updatedAt: number }[];
  /** Analyses still open (running, queued or terminal event not yet published) with their photo. */
  openImages(): { analysisId: string; sha256: string }[];
  /** Writes a batch parked by a full disk now (the storage guard calls it once space returns). */
  retryNow(): void;
  close(): Promise<void>;
}

export interface StateStoreOptions {
  file: string;
  durability: 'full' | 'normal';
  /** Told about every failed write (the storage guard turns a full disk into 507 at the door). */
  onWriteError?: (err: Error) => void;
  /** Clock of the retry backoff. */
  clock?: Clock;
  retryMinMs?: number;
  retryMaxMs?: number;
}

export async function openStateStore(opts: StateStoreOptions): Promise<StateStore> {
  // Create the schema before the worker and the reader open the file.
  openStateDb(opts.file, opts.durability).close();
  const reader: Database.Database = openStateDb(opts.file, opts.durability, true);
  const getStmt = reader.prepare<[string], { state: string }>('SELECT state FROM analyses WHERE id = ?');
  const openStmt = reader.prepare<[], { state: string }>('SELECT state FROM analyses WHERE open = 1 ORDER BY created_at');
  const listStmt = reader.prepare<[number], ListRow>(`SELECT ${LIST_COLUMNS} FROM analyses ORDER BY created_at DESC LIMIT ?`);
  const byAgeStmt = reader.prepare<[number, number], { row: number; id: string; open: number; updated_at: number; sha: string | null }>(
    "SELECT rowid AS row, id, open, updated_at, json_extract(state, '$.image.sha256') AS sha FROM analyses WHERE rowid > ? ORDER BY rowid LIMIT ?",
  );
  const openImagesStmt = reader.prepare<[], { id: string; sha: string | null }>("SELECT id, json_extract(state, '$.image.sha256') AS sha FROM analyses WHERE open = 1");
  const listByStatus = reader.prepare<[string, number], ListRow>(`SELECT ${LIST_COLUMNS} FROM analyses WHERE status = ? ORDER BY created_at DESC LIMIT ?`);

  const worker: Worker = new Worker(new URL('./store-worker.js', import.meta.url), {
    workerData: { file: opts.file, durability: opts.durability },
  });
  const stats: StateStoreStats = { commits: 0, rowsWritten: 0, pendingRows: 0, lastCommitMs: 0, writeRetries: 0, retrying: undefined };
  const clock = opts.clock ?? systemClock;
  const retryMin = opts.retryMinMs ?? 250;
  const retryMax = opts.retryMaxMs ?? 10_000;
  let retryDelay = retryMin;
  let retryTimer: TimerHandle | undefined;
  let pending = new Map<string, StoreRow | { id: string; close: true }>();
  let pendingWaiters: (() => void)[] = [];
  let pendingRejects: ((e: Error) => void)[] = [];
  let inFlight: { seq: number; resolve: (() => void)[]; reject: ((e: Error) => void)[]; rows: Map<string, StoreRow | { id: string; close: true }> } | undefined;
  let seq = 0;
  let scheduled = false;
  let fatal: Error | undefined;

  const flush = () => {
    scheduled = false;
    if (inFlight || pending.size === 0) return;
    inFlight = { seq: ++seq, resolve: pendingWaiters, reject: pendingRejects, rows: pending };
    post(inFlight);
    pending = new Map();
    pendingWaiters = [];
    pendingRejects = [];
    stats.pendingRows = 0;
  };
  const schedule = () => {
    if (!scheduled && !inFlight) {
      scheduled = true;
      setImmediate(flush);
    }
  };

  const post = (f: NonNullable<typeof inFlight>) => worker.postMessage({ seq: f.seq, rows: [...f.rows.values()] });
  /** Re-posts the parked batch (same rows, same waiters: its transaction was rolled back). */
  const retryNow = () => {
    if (retryTimer) clock.clearTimeout(retryTimer);
    retryTimer = undefined;
    if (inFlight && stats.retrying !== undefined) post(inFlight);
  };

  worker.on('message', (m: { seq?: number; ms?: number; error?: string; code?: string; closed?: boolean }) => {
    if (m.closed || !inFlight || m.seq !== inFlight.seq) return;
    if (m.error) {
      const err = Object.assign(new Error(`state store write failed: ${m.error}`), { code: m.code });
      opts.onWriteError?.(err);
      if (isStorageError(err)) {
        // A full disk is not fatal: the batch stays in flight (newer saves coalesce behind it)
        // and is written again with backoff, so accepted analyses finish once space returns.
        stats.writeRetries++;
        stats.retrying = m.error;
        retryTimer = clock.setTimeout(retryNow, retryDelay);
        retryDelay = Math.min(retryMax, retryDelay * 2);
        return;
      }
    }
    const done = inFlight;
    inFlight = undefined;
    stats.retrying = undefined;
    retryDelay = retryMin;
    if (m.error) {
      fatal = new Error(`state store write failed: ${m.error}`);
      done.reject.forEach((r) => r(fatal!));
    } else {
      stats.commits++;
      stats.rowsWritten += done.rows.size;
      stats.lastCommitMs = m.ms ?? 0;
      done.resolve.forEach((r) => r());
    }
    schedule();
  });
  worker.on('error', (err) => {
    fatal = err;
    inFlight?.reject.forEach((r) => r(err));
    pendingRejects.forEach((r) => r(err));
  });

  const toRow = (s: AnalysisState): StoreRow => ({
    id: s.analysisId,
    status: s.status,
    open: isOpen(s) ? 1 : 0,
    createdAt: s.receivedAt,
    updatedAt: Date.now(),
    state: JSON.stringify(s),
  });
  const fromRow = (r: { state: string } | undefined): AnalysisState | undefined => (r ? (JSON.parse(r.state) as AnalysisState) : undefined);
  const enqueue = (id: string, row: StoreRow | { id: string; close: true }): Promise<void> => {
    if (fatal) return Promise.reject(fatal);
    const prev = pending.get(id);
    // A close never replaces an unwritten full row: it amends it.
    pending.set(id, 'close' in row && prev && 'state' in prev ? { ...prev, open: 0 } : row);
    stats.pendingRows = pending.size;
    const p = new Promise<void>((resolve, reject) => {
      pendingWaiters.push(resolve);
      pendingRejects.push(reject);
    });
    schedule();
    return p;
  };

  return {
    stats,
    loadOpen: () => openStmt.all().map((r) => JSON.parse(r.state) as AnalysisState),
    get(id) {
      const p = pending.get(id) ?? inFlight?.rows.get(id);
      if (p && 'state' in p) return fromRow(p);
      return fromRow(getStmt.get(id));
    },
    list({ limit, status }) {
      const rows = status ? listByStatus.all(status, limit) : listStmt.all(limit);
      return rows.map((r) => ({
        analysisId: r.id,
        status: r.status,
        createdAt: new Date(r.created_at).toISOString(),
        updatedAt: new Date(r.updated_at).toISOString(),
        ...(typeof r.file_name === 'string' ? { fileName: r.file_name } : {}),
        ...(typeof r.machine_type === 'string' ? { machineType: r.machine_type } : {}),
      }));
    },
    save: (state) => enqueue(state.analysisId, toRow(state)),
    markPublished: (id) => enqueue(id, { id, close: true }),
    imagesByAge: (afterRow, limit) =>
      byAgeStmt.all(afterRow, limit).map((r) => ({ row: r.row, analysisId: r.id, sha256: r.sha ?? '', finished: r.open === 0, updatedAt: r.updated_at })),
    openImages: () => openImagesStmt.all().flatMap((r) => (r.sha ? [{ analysisId: r.id, sha256: r.sha }] : [])),
    retryNow,
    async close() {
      while ((pending.size > 0 || inFlight) && !fatal) {
        // On a full disk the last rows are given one more try, then left: the intake journal
        // still holds uploads the store has not committed (agent.ts), they are re-published on start.
        if (stats.retrying !== undefined) {
          retryNow();
          await new Promise((r) => setTimeout(r, 50));
          if (stats.retrying !== undefined) break;
        }
        flush();
        await new Promise((r) => setTimeout(r, 1));
      }
      if (retryTimer) clock.clearTimeout(retryTimer);
      await new Promise<void>((resolve) => {
        worker.once('message', () => resolve());
        worker.postMessage('close');
      });
      await worker.terminate();
      reader.close();
    },
  };
}

