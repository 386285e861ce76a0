import fs from 'node:fs';

/**
 * A data file found damaged at start and moved aside so that the gateway could start: flash
 * corruption, or a power cut on a filesystem that did not keep its promises. Refusing such a file
 * kept the whole gateway down (no uploads, no UI) for the sake of one part of it. The damaged
 * file stays beside the new one for whoever wants to recover it; health lists every one until the
 * next start (agent/src/http/routes/health.ts).
 */
export interface SetAside {
  /** What the file holds, for a person ("photo history", "device state"). */
  what: string;
  file: string;
  /** Where it is kept; null when it could not be moved (a read-only release directory) or is left in place (`mismatch`): it is then passed over at each start. */
  movedTo: string | null;
  /** `damaged` (the default): it does not read. `mismatch`: it reads, but was made for something else (a head trained for another model), so it is left where it is. */
  fault?: 'damaged' | 'mismatch';
  /** What was wrong with it. */
  reason: string;
  /** What of it was kept, when some of it could be read ("the machine profile and 2 of 3 reference photos"). */
  kept?: string;
  /** What is used instead, when not an empty new file ("the next head: the shipped one, refitted to the technicians' labels"). */
  replacedBy?: string;
  at: string;
}

/**
 * Renames `file` to `{file}.bad-{time}`, with SQLite's `-wal` and `-shm` beside it when `sqlite`
 * (a WAL left next to a new database would be replayed into it). Returns the new path.
 */
export function moveAside(file: string, opts: { sqlite?: boolean; now?: number } = {}): string {
  const movedTo = `${file}.bad-${opts.now ?? Date.now()}`;
  fs.renameSync(file, movedTo);
  for (const suffix of opts.sqlite ? ['-wal', '-shm'] : []) {
    try {
      fs.renameSync(file + suffix, movedTo + suffix);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return movedTo;
}

/** One sentence for health's reasons. */
export function describeSetAside(s: SetAside): string {
  const instead = s.kept ? `; kept: ${s.kept}` : s.replacedBy ? `; ${s.replacedBy}` : '; it starts empty';
  if (s.fault === 'mismatch') return `the ${s.what} (${s.file}) does not fit (${s.reason}); it is left in place and passed over${instead}`;
  const where = s.movedTo ? `was moved to ${s.movedTo}` : 'could not be moved and is passed over';
  return `the ${s.what} (${s.file}) was damaged (${s.reason}) and ${where}${instead}`;
}
