/**
 * The record of an update in progress, /opt/tu-agent/update-pending/. `tu-agent update` writes
 * it (durably) before it unpacks anything, and removes it once the new version answered healthy
 * or the old one is back. While it exists `current` may name a version nobody has seen healthy.
 *
 * Why: the update waits up to 90 s for the new version with `current` already switched. A power
 * cut (the ignition), or the operator's ssh session dropping over the cellular link (SIGHUP),
 * ended the update right there, and a new version that does not start stayed `current` with
 * nothing left to switch back: the gateway never came up again. Now the unit's ExecStartPre
 * (agent/systemd/tu-agent.service) runs `tu-agent recover` from the version the record names
 * as the one to return to (the link `update-pending/current`), so every start after an
 * interrupted update begins with the old version back in place. The record names its owner
 * (boot, pid, the process's start time): while that process lives, the update is not
 * interrupted and `recover` leaves it alone (the update's own restart runs ExecStartPre too).
 * The record also serves as the lock: a second update or rollback is refused while it runs.
 *
 * Once the new version has answered healthy the record says so first (`healthy`, markHealthy),
 * before the update tells anyone or removes the record: an update cut short after that point is
 * completed at the next start, not reverted. It was reverted, so a gateway whose operator had
 * read "updated to X: healthy" came back on the old version after the next power cut
 * (test/release.update.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { TuError } from '@tu/shared';
import { fsyncDirSync, writeFileDurableSync } from '../fs/durable.js';
import { RELEASE_VERSION } from '../release/layout.js';
import { removeCutShortCopies } from './leftovers.js';
import { linkedDir, removeLink, switchLinkTo } from './links.js';
import type { SystemPaths } from './system-paths.js';
import { installUnit } from './unit-file.js';

const PENDING = 'update-pending';
const RECORD = 'record.json';

const OwnerSchema = z.object({ bootId: z.string().min(1), pid: z.number().int().positive(), startTicks: z.string().min(1) });
type Owner = z.infer<typeof OwnerSchema>;
const VersionFolder = z.string().regex(RELEASE_VERSION);
const RecordSchema = z.object({
  owner: OwnerSchema,
  /** The version folders `current` and `previous` named when the update began. */
  current: VersionFolder,
  previous: VersionFolder.nullable(),
  /** The version folder that answered healthy: `current` names it and the update is decided. */
  healthy: VersionFolder.optional(),
});
type PendingRecord = z.infer<typeof RecordSchema>;

const pendingDir = (p: SystemPaths) => path.join(p.prefix, PENDING);

/** This boot, this process and when it started: a pid alone may be reused after it died. */
function identity(pid: number): Owner | null {
  try {
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime); fields are counted after the command name, which may hold spaces.
    const startTicks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return startTicks ? { bootId, pid, startTicks } : null;
  } catch {
    return null;
  }
}

const alive = (o: Owner): boolean => {
  const now = identity(o.pid);
  return now !== null && now.bootId === o.bootId && now.startTicks === o.startTicks;
};

function readRecord(p: SystemPaths): PendingRecord | null {
  const file = path.join(pendingDir(p), RECORD);
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TuError('INSTALL_FAILED', `cannot read ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    json = null;
  }
  const parsed = RecordSchema.safeParse(json);
  if (!parsed.success) throw new TuError('INSTALL_FAILED', `${file} is damaged; check that ${p.current} names a version that starts, then remove ${pendingDir(p)}`);
  return parsed.data;
}

/** Removes version folders other than current and previous (flash is small). */
export function prune(p: SystemPaths, out: (l: string) => void): void {
  const keep = new Set([linkedDir(p.current), linkedDir(p.previous)].filter((d): d is string => d !== null).map((d) => path.basename(d)));
  for (const e of fs.readdirSync(p.prefix, { withFileTypes: true })) {
    if (e.isDirectory() && RELEASE_VERSION.test(e.name) && !keep.has(e.name)) {
      fs.rmSync(path.join(p.prefix, e.name), { recursive: true, force: true });
      out(`removed old version ${e.name}`);
    }
  }
}

/**
 * Records, durably, that `version` (the folder `current` names) answered healthy: from here an
 * interruption completes the update instead of reverting it. The record is replaced whole
 * (written beside it, renamed over it).
 */
export function markHealthy(p: SystemPaths, version: string): void {
  const record = readRecord(p);
  if (record === null) throw new TuError('INSTALL_FAILED', `the record of this update, ${path.join(pendingDir(p), RECORD)}, is gone`);
  writeFileDurableSync(path.join(pendingDir(p), RECORD), JSON.stringify(RecordSchema.parse({ ...record, healthy: version })) + '\n');
}

/** Removes the record: the links are final. */
export function endUpdate(p: SystemPaths): void {
  fs.rmSync(pendingDir(p), { recursive: true, force: true });
  fsyncDirSync(p.prefix);
}

/**
 * Puts back what an interrupted update changed: `current` and `previous` as they were, their
 * unit, no half-unpacked or unverified version left on flash. `reload`: tell systemd about the
 * restored unit (not from ExecStartPre, while systemd is starting the unit: it takes the
 * restored file at the next boot). 'running' when the update is still going on.
 */
export function recoverInterruptedUpdate(p: SystemPaths, reload: boolean, out: (l: string) => void): 'none' | 'running' | 'recovered' {
  if (!fs.existsSync(pendingDir(p))) return 'none';
  const record = readRecord(p);
  if (record === null) {
    // A record directory without its record cannot be one update wrote (it renames it into place whole).
    endUpdate(p);
    return 'none';
  }
  if (alive(record.owner)) return 'running';
  const was = linkedDir(p.current);
  if (record.healthy !== undefined && was === path.join(p.prefix, record.healthy) && fs.existsSync(path.join(was, 'release.json'))) {
    // Cut short after the new version answered healthy: finish what the update had left to do.
    switchLinkTo(p.previous, path.join(p.prefix, record.current));
    removeCutShortCopies(p, out, { updateLockHeld: true });
    prune(p, out);
    endUpdate(p);
    out(`an update or rollback was interrupted after ${record.healthy} answered healthy: kept ${record.healthy}, ${record.current} is the previous version`);
    return 'recovered';
  }
  const current = path.join(p.prefix, record.current);
  if (!fs.existsSync(path.join(current, 'release.json'))) throw new TuError('INSTALL_FAILED', `an interrupted update was to return to ${current}, which is gone; reinstall with tu-agent install`);
  if (was !== current) {
    installUnit(p, current, reload, out);
    switchLinkTo(p.current, current);
    out(`an update or rollback was interrupted before ${was ? path.basename(was) : 'its version'} answered healthy: back to ${record.current}`);
  }
  if (record.previous) switchLinkTo(p.previous, path.join(p.prefix, record.previous));
  else removeLink(p.previous);
  removeCutShortCopies(p, out, { updateLockHeld: true });
  prune(p, out);
  endUpdate(p);
  return 'recovered';
}

/**
 * Takes the update lock and records what to return to; first puts back an earlier update that
 * was interrupted. Refused while another update runs.
 */
export function beginUpdate(p: SystemPaths, reload: boolean, out: (l: string) => void): void {
  const state = recoverInterruptedUpdate(p, reload, out);
  if (state === 'running') {
    const owner = readRecord(p)?.owner;
    throw new TuError('INSTALL_FAILED', `another update is running (pid ${owner?.pid ?? '?'}); wait for it to end, then run the command again`);
  }
  const current = linkedDir(p.current);
  const me = identity(process.pid);
  if (!current || !me) throw new TuError('INSTALL_FAILED', `${p.current} does not exist; install first with tu-agent install`);
  removeCutShortCopies(p, out, { updateLockHeld: true });
  const previous = linkedDir(p.previous);
  const record: PendingRecord = RecordSchema.parse({ owner: me, current: path.basename(current), previous: previous && fs.existsSync(previous) ? path.basename(previous) : null });
  // Written whole in a temp folder, then renamed: a record is either all there or absent.
  const tmp = path.join(p.prefix, `.pending-${process.pid}.tmp`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { mode: 0o755 });
  writeFileDurableSync(path.join(tmp, RECORD), JSON.stringify(record) + '\n');
  // What the unit's ExecStartPre runs `recover` from: the version known to start.
  fs.symlinkSync(path.join('..', record.current), path.join(tmp, 'current'));
  fsyncDirSync(tmp);
  fs.renameSync(tmp, pendingDir(p));
  fsyncDirSync(p.prefix);
}
