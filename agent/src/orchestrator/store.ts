import type Database from 'better-sqlite3';
import { systemClock, type Backoff, type Clock } from '@tu/shared';
import { GroupCommitWriter, type GroupCommitPolicy } from '../sqlite/group-commit-writer.js';
import type { WriterThread } from '../sqlite/writer-thread.js';
import { isOpen, type AnalysisState } from './state.js';
import { openStateDb, type CloseRow, type StoreBatch, type StoreRow } from './store-db.js';

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
 * per analysis and written in batches by a worker thread (GroupCommitWriter,
 * sqlite/group-commit-writer.ts); the promise resolves once the row is committed (and
 * fsynced with `full` durability). A full disk parks the batch and retries it.
 */
export interface StateStore {
  loadOpen(): AnalysisState[];
  get(id: string): AnalysisState | undefined;
  /** Whether the analysis is stored or waiting to be: `get` without reading or copying its state. */
  has(id: string): boolean;
  /**
   * Whether a row of the analysis is committed (read from the database, not the batches waiting
   * to be written): a restart would find it. The intake keeps an upload's journal entry until then.
   */
  onDisk(id: string): boolean;
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
  /** Time of `updated_at` and clock of the full-disk retry timer. */
  clock?: Clock;
  /** Delays between full-disk retries of a batch (GroupCommitWriter's default when absent). */
  retry?: Backoff;
  /** The agent's SQLite writer thread (sqlite/writer-thread.ts); without it this file starts one of its own. */
  thread?: WriterThread;
}

/**
 * A save waiting for its batch: the analysis itself, serialised only when the batch is sealed.
 * The orchestrator saves one analysis several times while a batch fills (arrival, each step's
 * end, the terminal event); serialising each save showed as the top of its CPU profile
 * (bench/orchestrator.bench.ts). The sealed row is the analysis as it is at that moment, never
 * older than any save it stands for. `closed`: markPublished came after the save.
 */
type PendingSave = { state: AnalysisState; closed: boolean };
/** A save, or a close of a row that is already written (markPublished). */
type PendingRow = PendingSave | CloseRow;

export async function openStateStore(opts: StateStoreOptions): Promise<StateStore> {
  // Create the schema before the worker and the reader open the file.
  openStateDb(opts.file, opts.durability).close();
  const reader: Database.Database = openStateDb(opts.file, opts.durability, true);
  const getStmt = reader.prepare<[string], { state: string }>('SELECT state FROM analyses WHERE id = ?');
  const hasStmt = reader.prepare<[string], { one: number }>('SELECT 1 AS one FROM analyses WHERE id = ?');
  const openStmt = reader.prepare<[], { state: string }>('SELECT state FROM analyses WHERE open = 1 ORDER BY created_at');
  const listStmt = reader.prepare<[number], ListRow>(`SELECT ${LIST_COLUMNS} FROM analyses ORDER BY created_at DESC LIMIT ?`);
  const byAgeStmt = reader.prepare<[number, number], { row: number; id: string; open: number; updated_at: number; sha: string | null }>(
    "SELECT rowid AS row, id, open, updated_at, json_extract(state, '$.image.sha256') AS sha FROM analyses WHERE rowid > ? ORDER BY rowid LIMIT ?",
  );
  const openImagesStmt = reader.prepare<[], { id: string; sha: string | null }>("SELECT id, json_extract(state, '$.image.sha256') AS sha FROM analyses WHERE open = 1");
  const listByStatus = reader.prepare<[string, number], ListRow>(`SELECT ${LIST_COLUMNS} FROM analyses WHERE status = ? ORDER BY created_at DESC LIMIT ?`);

  const clock = opts.clock ?? systemClock;
  const toRow = ({ state: s, closed }: PendingSave): StoreRow => ({
    id: s.analysisId,
    status: s.status,
    open: !closed && isOpen(s) ? 1 : 0,
    createdAt: s.receivedAt,
    updatedAt: clock.now(),
    state: JSON.stringify(s),
  });
  /** The store's policy: the newest save per analysis wins, and a close never replaces an unwritten save. */
  const coalescing: GroupCommitPolicy<Map<string, PendingRow>, StoreBatch> = {
    empty: () => new Map(),
    hasWork: (rows) => rows.size > 0,
    seal: (rows) => [...rows.values()].map((r) => ('close' in r ? r : toRow(r))),
  };
  let rowsWritten = 0;
  const writer = new GroupCommitWriter({
    entry: new URL('./store-worker.js', import.meta.url),
    data: { file: opts.file, durability: opts.durability },
    ...(opts.thread ? { thread: opts.thread } : {}),
    policy: coalescing,
    clock,
    ...(opts.retry ? { retry: opts.retry } : {}),
    writeError: (cause) => Object.assign(new Error(`state store write failed: ${cause.message}`, { cause }), { code: cause.code }),
    ...(opts.onWriteError ? { onWriteError: opts.onWriteError } : {}),
    onCommit: ({ pending }) => {
      rowsWritten += pending.size;
    },
  });

  const fromRow = (r: { state: string } | undefined): AnalysisState | undefined => (r ? (JSON.parse(r.state) as AnalysisState) : undefined);
  const enqueue = (id: string, row: PendingRow): Promise<void> => {
    if (writer.error) return Promise.reject(writer.error);
    const pending = writer.pending;
    const prev = pending.get(id);
    // A close never replaces an unwritten save: it amends it.
    pending.set(id, 'close' in row && prev && 'state' in prev ? { ...prev, closed: true } : row);
    return writer.commit();
  };

  return {
    get stats(): StateStoreStats {
      const w = writer.stats;
      return { commits: w.commits, rowsWritten, pendingRows: writer.pending.size, lastCommitMs: w.lastCommitMs, writeRetries: w.writeRetries, retrying: w.retrying };
    },
    loadOpen: () => openStmt.all().map((r) => JSON.parse(r.state) as AnalysisState),
    get(id) {
      const p = writer.pending.get(id) ?? writer.inFlight?.get(id);
      // A copy, as a read from the database would be: callers must not share the orchestrator's object.
      if (p && 'state' in p) return structuredClone(p.state);
      return fromRow(getStmt.get(id));
    },
    has: (id) => writer.pending.has(id) || Boolean(writer.inFlight?.has(id)) || hasStmt.get(id) !== undefined,
    onDisk: (id) => hasStmt.get(id) !== undefined,
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
    save: (state) => enqueue(state.analysisId, { state, closed: false }),
    markPublished: (id) => enqueue(id, { id, close: true }),
    imagesByAge: (afterRow, limit) =>
      byAgeStmt.all(afterRow, limit).map((r) => ({ row: r.row, analysisId: r.id, sha256: r.sha ?? '', finished: r.open === 0, updatedAt: r.updated_at })),
    openImages: () => openImagesStmt.all().flatMap((r) => (r.sha ? [{ analysisId: r.id, sha256: r.sha }] : [])),
    retryNow: () => writer.retryNow(),
    async close() {
      // On a full disk the last rows are given one more try, then left: the intake journal
      // still holds uploads the store has not committed (agent.ts), they are re-published on start.
      await writer.close();
      reader.close();
    },
  };
}

