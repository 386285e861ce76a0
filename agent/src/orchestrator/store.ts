import type Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import { isOpen, type AnalysisState } from './state.js';
import { openStateDb, type StoreRow } from './store-db.js';

export interface StateStoreStats {
  commits: number;
  rowsWritten: number;
  pendingRows: number;
  lastCommitMs: number;
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
  close(): Promise<void>;
}

export async function openStateStore(opts: { file: string; durability: 'full' | 'normal' }): Promise<StateStore> {
  // Create the schema before the worker and the reader open the file.
  openStateDb(opts.file, opts.durability).close();
  const reader: Database.Database = openStateDb(opts.file, opts.durability, true);
  const getStmt = reader.prepare<[string], { state: string }>('SELECT state FROM analyses WHERE id = ?');
  const openStmt = reader.prepare<[], { state: string }>('SELECT state FROM analyses WHERE open = 1 ORDER BY created_at');
  const listStmt = reader.prepare<[number], ListRow>(`SELECT ${LIST_COLUMNS} FROM analyses ORDER BY created_at DESC LIMIT ?`);
  const listByStatus = reader.prepare<[string, number], ListRow>(`SELECT ${LIST_COLUMNS} FROM analyses WHERE status = ? ORDER BY created_at DESC LIMIT ?`);

  const worker: Worker = new Worker(new URL('./store-worker.js', import.meta.url), {
    workerData: { file: opts.file, durability: opts.durability },
  });
  const stats: StateStoreStats = { commits: 0, rowsWritten: 0, pendingRows: 0, lastCommitMs: 0 };
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
    worker.postMessage({ seq: inFlight.seq, rows: [...pending.values()] });
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

  worker.on('message', (m: { seq?: number; ms?: number; error?: string; closed?: boolean }) => {
    if (m.closed || !inFlight || m.seq !== inFlight.seq) return;
    const done = inFlight;
    inFlight = undefined;
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
    async close() {
      while (pending.size > 0 || inFlight) {
        flush();
        await new Promise((r) => setTimeout(r, 1));
      }
      await new Promise<void>((resolve) => {
        worker.once('message', () => resolve());
        worker.postMessage('close');
      });
      await worker.terminate();
      reader.close();
    },
  };
}

