import type { AnyEvent } from '@tu/shared';
import type { OpenFailed } from '../sqlite/writer-thread-worker.js';
import { WriterThread } from '../sqlite/writer-thread.js';
import { openJournalDb, type JournalBatch, type JournalReply } from './journal-db.js';

export interface JournalEntry {
  analysisId: string;
  event: AnyEvent;
  acceptedAt: number;
}

export interface IntakeJournalStats {
  /** Transactions committed by the writer thread (each holds every add and remove that arrived meanwhile). */
  commits: number;
  /** Entries added and removed in them. */
  added: number;
  removed: number;
  lastCommitMs: number;
}

/**
 * Intake journal: uploads answered 202 but not yet known to the orchestrator. One row per
 * upload (insert on accept, delete once acknowledged), synchronous=FULL so a 202 survives
 * power loss. Stays as small as the number of unacknowledged uploads: O(1) per upload.
 * Writes go to the SQLite writer thread (journal-worker.ts on sqlite/writer-thread.ts) in group commits: `add` resolves once its
 * row is committed and fsynced, and the adds and removes that arrive while one commit runs
 * share the next one, so a burst of uploads neither blocks the event loop nor pays one
 * fsync per photo.
 */
export interface IntakeJournal {
  /** Resolves once the entry is committed durably (the upload may be answered 202 then); rejects with the write's error (code SQLITE_FULL, …). */
  add(entry: JournalEntry): Promise<void>;
  /** Deletes the entries of these analyses; resolves once committed. */
  remove(analysisIds: readonly string[]): Promise<void>;
  /** Every committed entry, oldest first (read at start, on the calling thread). */
  all(): JournalEntry[];
  /** Committed entries. */
  size(): number;
  readonly stats: IntakeJournalStats;
  /** Commits what was added or removed before, then stops the writer thread. */
  close(): Promise<void>;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** `thread`: the agent's SQLite writer thread; without it the journal starts (and stops) one of its own. */
export function openIntakeJournal(file: string, thread?: WriterThread): IntakeJournal {
  // The reader creates the schema before the writer thread opens the file; it serves all() and size().
  const reader = openJournalDb(file);
  const allStmt = reader.prepare<[], { analysis_id: string; event: string; accepted_at: number }>('SELECT analysis_id, event, accepted_at FROM intake_journal ORDER BY accepted_at');
  const countStmt = reader.prepare<[], { n: number }>('SELECT count(*) AS n FROM intake_journal');
  const writers = thread ?? new WriterThread();
  const channel = writers.open(new URL('./journal-worker.js', import.meta.url), { file }, (err) => fail(err));
  const port = channel.port;
  const stats: IntakeJournalStats = { commits: 0, added: 0, removed: 0, lastCommitMs: 0 };

  let seq = 0;
  let next: { batch: JournalBatch; waiters: Waiter[] } | undefined;
  let inFlight: { batch: JournalBatch; waiters: Waiter[] } | undefined;
  let scheduled = false;
  /** The writer thread died: every write fails with this from now on (the agent's health shows the intake failing). */
  let fatal: Error | undefined;
  let closed: (() => void) | undefined;

  const flush = (): void => {
    scheduled = false;
    if (inFlight || !next) return;
    inFlight = next;
    next = undefined;
    port.postMessage(inFlight.batch);
  };
  const enqueue = (fill: (b: JournalBatch) => void): Promise<void> => {
    if (fatal) return Promise.reject(fatal);
    next ??= { batch: { seq: ++seq, add: [], remove: [] }, waiters: [] };
    fill(next.batch);
    const n = next;
    const p = new Promise<void>((resolve, reject) => n.waiters.push({ resolve, reject }));
    // One commit at a time: what arrives meanwhile waits for it and goes in the next one.
    if (!scheduled && !inFlight) {
      scheduled = true;
      setImmediate(flush);
    }
    return p;
  };
  const fail = (err: Error): void => {
    fatal ??= err;
    for (const b of [inFlight, next]) b?.waiters.forEach((w) => w.reject(err));
    inFlight = next = undefined;
  };

  port.on('message', (m: JournalReply | OpenFailed) => {
    if ('openFailed' in m) return fail(Object.assign(new Error(`intake journal cannot open ${file}: ${m.openFailed}`), m.code ? { code: m.code } : {}));
    if ('closed' in m) return closed?.();
    const done = inFlight;
    if (!done || m.seq !== done.batch.seq) return;
    inFlight = undefined;
    if ('error' in m) {
      // The transaction was rolled back: none of its adds is durable, each caller refuses its upload.
      const err = Object.assign(new Error(`intake journal write failed: ${m.error}`), m.code ? { code: m.code } : {});
      done.waiters.forEach((w) => w.reject(err));
    } else {
      stats.commits++;
      stats.added += done.batch.add.length;
      stats.removed += done.batch.remove.length;
      stats.lastCommitMs = m.ms;
      done.waiters.forEach((w) => w.resolve());
    }
    flush();
  });

  return {
    stats,
    add: (e) => {
      // JSON text crosses to the writer thread as one string (cheaper to clone than the event object).
      const row = { id: e.analysisId, event: JSON.stringify(e.event), at: e.acceptedAt };
      return enqueue((b) => b.add.push(row));
    },
    remove: (ids) => (ids.length ? enqueue((b) => b.remove.push(...ids)) : Promise.resolve()),
    all: () => allStmt.all().map((r) => ({ analysisId: r.analysis_id, event: JSON.parse(r.event) as AnyEvent, acceptedAt: r.accepted_at })),
    size: () => countStmt.get()!.n,
    async close() {
      while ((inFlight || next) && !fatal) {
        flush();
        await new Promise((r) => setTimeout(r, 1));
      }
      if (!fatal) {
        await new Promise<void>((resolve) => {
          closed = resolve;
          port.postMessage('close');
        });
      }
      closed ??= () => undefined;
      channel.close();
      if (!thread) await writers.close();
      reader.close();
    },
  };
}
