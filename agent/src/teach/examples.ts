import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { AnyEvent, RecognitionLabelled } from '@tu/shared';
import type { SetAside } from '../fs/set-aside.js';
import { openSqlite, openSqliteOrSetAside } from '../sqlite.js';

/** The SQLite file under dataDir that keeps technicians' labelled examples. */
export const EXAMPLES_FILE = 'examples.sqlite';

/**
 * One labelled example: the data of the `recognition.labelled` event that announced it, with
 * the embedding's numbers (the head refit's input) where the event carries its reference.
 */
export type LabelledExample = Omit<RecognitionLabelled, 'embedding'> & { embedding: number[] };

export interface StoredExample {
  example: LabelledExample;
  /** The event as built (same id on every re-send, so the relay deduplicates). */
  event: AnyEvent;
  published: boolean;
}

/**
 * Labelled examples on the gateway: one row per analysis (a relabel replaces it: the latest
 * label wins), with the `recognition.labelled` event written in the same row so it can be
 * re-published after a crash. synchronous=FULL: a label answered 201 survives a power cut.
 */
export interface ExampleStore {
  get(analysisId: string): StoredExample | undefined;
  /** Inserts or replaces the analysis's example (committed when this returns). */
  put(example: LabelledExample, event: AnyEvent): void;
  markPublished(correctionId: string): void;
  unpublished(): StoredExample[];
  /** Newest first (by `at`, then correction id). */
  list(opts?: { limit?: number }): LabelledExample[];
  count(): number;
  close(): void;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS examples (
    analysis_id TEXT PRIMARY KEY NOT NULL,
    correction_id TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    embedding TEXT NOT NULL,
    label TEXT NOT NULL,
    previous_label TEXT NOT NULL,
    kind TEXT NOT NULL,
    by_whom TEXT NOT NULL,
    at TEXT NOT NULL,
    data TEXT NOT NULL,
    event TEXT NOT NULL,
    published INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX IF NOT EXISTS examples_at ON examples (at, correction_id);`;

interface Row {
  data: string;
  event: string;
  published: number;
}

const toStored = (r: Row): StoredExample => ({ example: JSON.parse(r.data) as LabelledExample, event: JSON.parse(r.event) as AnyEvent, published: r.published === 1 });

function newestFirst(db: Database.Database, limit: number): LabelledExample[] {
  return db
    .prepare<[number], { data: string }>('SELECT data FROM examples ORDER BY at DESC, correction_id DESC LIMIT ?')
    .all(limit)
    .map((r) => JSON.parse(r.data) as LabelledExample);
}

export function openExampleStore(file: string, opts: { onSetAside?: (s: SetAside) => void } = {}): ExampleStore {
  // A damaged file is moved aside (kept for recovery) and labelling goes on with a new one:
  // labels already sent are in the relay's record too (sqlite.ts openSqliteOrSetAside).
  const db = openSqliteOrSetAside(file, { durability: 'full', schema: SCHEMA, what: "technicians' labels", ...(opts.onSetAside ? { onSetAside: opts.onSetAside } : {}) });
  const get = db.prepare<[string], Row>('SELECT data, event, published FROM examples WHERE analysis_id = ?');
  const put = db.prepare(
    `INSERT OR REPLACE INTO examples (analysis_id, correction_id, sha256, embedding, label, previous_label, kind, by_whom, at, data, event, published)
     VALUES (@analysisId, @correctionId, @sha256, @embedding, @label, @previousLabel, @kind, @by, @at, @data, @event, 0)`,
  );
  const mark = db.prepare<[string]>('UPDATE examples SET published = 1 WHERE correction_id = ?');
  const pending = db.prepare<[], Row>('SELECT data, event, published FROM examples WHERE published = 0 ORDER BY at, correction_id');
  const count = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM examples');
  return {
    get: (id) => {
      const r = get.get(id);
      return r ? toStored(r) : undefined;
    },
    put: (e, event) =>
      void put.run({
        analysisId: e.analysisId,
        correctionId: e.correctionId,
        sha256: e.sha256,
        embedding: JSON.stringify(e.embedding),
        label: e.label,
        previousLabel: e.previousLabel,
        kind: e.kind,
        by: e.by,
        at: e.at,
        data: JSON.stringify(e),
        event: JSON.stringify(event),
      }),
    markPublished: (id) => void mark.run(id),
    unpublished: () => pending.all().map(toStored),
    list: (opts = {}) => newestFirst(db, opts.limit ?? -1),
    count: () => count.get()!.n,
    close: () => db.close(),
  };
}

/**
 * Every labelled example kept by the agent whose data directory is `dataDir`, newest first:
 * one per analysis (the technician's latest label), each with the photo's sha256, the
 * backbone embedding (the head's input), the label (a machine type or `negative`), the label
 * the gateway had recognised and who labelled it when. For the head refit
 * (agent/scripts/train-head.ts); opens the file read-only, so it is safe while the agent runs.
 * An agent that never stored a label has no file: [].
 */
export function listExamples(dataDir: string): LabelledExample[] {
  const file = path.join(dataDir, EXAMPLES_FILE);
  if (!fs.existsSync(file)) return [];
  const db = openSqlite(file, { readonly: true });
  try {
    return newestFirst(db, -1);
  } finally {
    db.close();
  }
}
