import { isStorageError } from '../fs/storage-guard.js';
import type { SetAside } from '../fs/set-aside.js';
import { openSqliteOrSetAside } from '../sqlite.js';

export interface HistoryPhoto {
  sha256: string;
  phash?: string;
  /**
   * Float32Array as read (a view on the row's blob, not copied into JS numbers: a comparison
   * reads up to maxPerMachine rows of 1280 floats each, on the agent's main thread).
   */
  embedding: ArrayLike<number>;
  machineId: string;
  takenAt: string;
  analysisId?: string;
}

/**
 * Earlier photos per machine, for comparison (embedding similarity, near-duplicates).
 * SQLite WAL, so recording one photo costs O(1) I/O whatever the history; bounded to the
 * last `maxPerMachine` photos of each machine. Duplicate-safe: (machine, sha256) is unique.
 */
export interface PhotoHistory {
  /** The most recent photos of a machine (newest first), at most maxPerMachine. */
  recent(machineId: string): (HistoryPhoto & { embedding: Float32Array })[];
  /**
   * Records a photo. A full disk does not fail the analysis (the comparison was made; the
   * photo is only missing from later ones): the error goes to onWriteError and false is returned.
   */
  record(photo: HistoryPhoto): boolean;
  count(machineId: string): number;
  /** Bytes the history's rows take in its file (pages in use; freed pages are reused). */
  usedBytes(): number;
  /**
   * Deletes up to `limit` of the oldest entries (all machines) whose analysis `evictable`
   * allows, for the storage quota; returns how many went.
   */
  evictOldest(limit: number, evictable: (analysisId: string | undefined) => boolean): number;
  close(): void;
}

const toBlob = (v: ArrayLike<number>): Buffer => Buffer.from(Float32Array.from(v).buffer);
// better-sqlite3 copies each blob into a Buffer of its own; a view needs a 4-byte-aligned offset.
const fromBlob = (b: Buffer): Float32Array =>
  b.byteOffset % 4 === 0 ? new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) : new Float32Array(Uint8Array.from(b).buffer);

export function openPhotoHistory(
  file: string,
  opts: { maxPerMachine?: number; durability?: 'full' | 'normal'; onWriteError?: (err: Error) => void; onSetAside?: (s: SetAside) => void } = {},
): PhotoHistory {
  const max = opts.maxPerMachine ?? 200;
  // A damaged file is moved aside and the history starts anew: it only feeds comparisons with
  // earlier photos, and refusing it kept the whole gateway from starting (sqlite.ts).
  const db = openSqliteOrSetAside(file, { durability: opts.durability ?? 'full', what: 'photo history', ...(opts.onSetAside ? { onSetAside: opts.onSetAside } : {}), schema: `CREATE TABLE IF NOT EXISTS photo_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    machine_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    phash TEXT,
    embedding BLOB NOT NULL,
    taken_at TEXT NOT NULL,
    analysis_id TEXT,
    UNIQUE (machine_id, sha256)
  );
  CREATE INDEX IF NOT EXISTS photo_history_machine ON photo_history (machine_id, seq DESC);` });
  const recent = db.prepare<[string, number], { sha256: string; phash: string | null; embedding: Buffer; machine_id: string; taken_at: string; analysis_id: string | null }>(
    'SELECT sha256, phash, embedding, machine_id, taken_at, analysis_id FROM photo_history WHERE machine_id = ? ORDER BY seq DESC LIMIT ?',
  );
  const insert = db.prepare<[string, string, string | null, Buffer, string, string | null]>(
    'INSERT OR IGNORE INTO photo_history (machine_id, sha256, phash, embedding, taken_at, analysis_id) VALUES (?, ?, ?, ?, ?, ?)',
  );
  // Drops what falls out of the window: at most one row per insert (index range scan).
  const trim = db.prepare<[string, string, number]>(
    'DELETE FROM photo_history WHERE machine_id = ? AND seq <= (SELECT seq FROM photo_history WHERE machine_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)',
  );
  const count = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM photo_history WHERE machine_id = ?');
  const pages = db.prepare<[], { used: number }>('SELECT (page_count - freelist_count) * page_size AS used FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()');
  const oldest = db.prepare<[number, number], { seq: number; analysis_id: string | null }>('SELECT seq, analysis_id FROM photo_history WHERE seq > ? ORDER BY seq LIMIT ?');
  const del = db.prepare<[number]>('DELETE FROM photo_history WHERE seq = ?');
  const record = db.transaction((p: HistoryPhoto) => {
    const r = insert.run(p.machineId, p.sha256, p.phash ?? null, toBlob(p.embedding), p.takenAt, p.analysisId ?? null);
    if (r.changes > 0) trim.run(p.machineId, p.machineId, max);
  });
  return {
    recent: (machineId) =>
      recent.all(machineId, max).map((r) => ({
        sha256: r.sha256,
        ...(r.phash ? { phash: r.phash } : {}),
        embedding: fromBlob(r.embedding),
        machineId: r.machine_id,
        takenAt: r.taken_at,
        ...(r.analysis_id ? { analysisId: r.analysis_id } : {}),
      })),
    record(p) {
      try {
        record(p);
        return true;
      } catch (err) {
        if (!opts.onWriteError || !isStorageError(err)) throw err;
        opts.onWriteError(err as Error);
        return false;
      }
    },
    count: (machineId) => count.get(machineId)!.n,
    usedBytes: () => pages.get()!.used,
    evictOldest(limit, evictable) {
      const seqs: number[] = [];
      // Walks from the oldest, skipping entries still needed, until `limit` are found.
      for (let after = 0; seqs.length < limit; ) {
        const rows = oldest.all(after, 256);
        if (rows.length === 0) break;
        for (const r of rows) if (seqs.length < limit && evictable(r.analysis_id ?? undefined)) seqs.push(r.seq);
        after = rows[rows.length - 1]!.seq;
      }
      db.transaction(() => seqs.forEach((s) => del.run(s)))();
      return seqs.length;
    },
    close: () => db.close(),
  };
}
