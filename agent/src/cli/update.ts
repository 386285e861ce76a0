/**
 * `tu-agent update <tarball>` and `tu-agent rollback`. An update unpacks the new release
 * beside the running one (/opt/tu-agent/<version>), switches `current`, restarts the
 * service and waits until /api/v1/health answers 200 *from the new version*. If it does
 * not within the timeout, `current` goes back, the old version is restarted and the
 * broken one removed. Data stays compatible both ways because a version refuses data
 * newer than it reads (release/data-format.ts) instead of damaging it. An update cut short
 * (power cut, dropped ssh session) is undone at the next start (update-pending.ts).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadAgentConfig } from '@tu/firmware-config';
import { systemClock, TuError, type Clock } from '@tu/shared';
import { ReleaseInfoSchema, type ReleaseInfo } from '../release/layout.js';
import { fsyncDirSync, fsyncTreeSync } from '../fs/durable.js';
import { isStorageError } from '../fs/storage-guard.js';
import { localViewToken, readHealth } from './health-client.js';
import { linkedDir, removeLink, switchLinkTo } from './links.js';
import { SERVICE_NAME, systemPaths, type SystemPaths } from './system-paths.js';
import { installUnit, systemdRuns } from './unit-file.js';
import { beginUpdate, endUpdate, markHealthy, prune, recoverInterruptedUpdate } from './update-pending.js';

export interface UpdateOptions {
  root: string;
  /** Shell command restarting the service; default `systemctl restart tu-agent`. */
  restartCommand?: string | undefined;
  timeoutMs: number;
  out: (line: string) => void;
}

function restart(o: UpdateOptions): void {
  const [cmd, args] = o.restartCommand ? ['sh', ['-c', o.restartCommand]] : ['systemctl', ['restart', SERVICE_NAME]];
  execFileSync(cmd, args as string[], { stdio: ['ignore', 'inherit', 'inherit'] });
}

/** What the update waits for: any 200 from the version (`answering`), or one saying `ok`. */
export interface HealthWanted {
  /** Only `status: ok` counts; a degraded answer is waited past, and its reasons are the failure. */
  requireOk: boolean;
  /** A view token for the details (reasons) of the answer; signed anew for each read. */
  token?: () => Promise<string | undefined>;
}

/**
 * What a version must show before the update keeps it: `ok` when the version it replaces was ok
 * right before (a degraded new version is a regression), else an answer (the gateway was degraded
 * or down already; the new version cannot be held to better). A new version whose shipped model
 * did not load answered 200 `degraded` ("photos are not recognised") and was kept and reported
 * "healthy" (test/release.update.test.ts).
 */
async function healthWanted(p: SystemPaths): Promise<HealthWanted> {
  const config = loadAgentConfig({ file: p.configFile });
  const token = () => localViewToken(config, 'tu-agent update');
  const before = await readHealth(config.http.port, 2000, await token());
  return { requireOk: before.ok && before.status === 200 && before.body.status === 'ok', token };
}

const answering: HealthWanted = { requireOk: false };

/**
 * Polls health until it is 200 and reports `version` (and `ok`, when required); returns the last
 * reason otherwise. The wait runs on the monotonic clock: a gateway without a real-time clock gets
 * its time from NTP soon after boot, and a wall clock set years ahead during the wait ended it at
 * once, so a good update was taken for unhealthy and rolled back (test/cli.update-wait.test.ts).
 */
export async function waitHealthy(
  port: number,
  version: string,
  timeoutMs: number,
  clock: Pick<Clock, 'monotonic'> = systemClock,
  wanted: HealthWanted = answering,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  const deadline = clock.monotonic() + timeoutMs;
  let reason = 'no answer yet';
  while (clock.monotonic() < deadline) {
    const h = await readHealth(port, 1000, await wanted.token?.());
    const answered = h.ok && h.status === 200 && h.body.agent?.version === version;
    if (answered && (!wanted.requireOk || h.body.status === 'ok')) return { ok: true };
    if (answered) reason = `version ${version} answers but is ${h.body.status}${h.body.reasons?.length ? `: ${h.body.reasons.join('; ')}` : ''} (the version before it was ok)`;
    else reason = h.ok ? `health ${h.status} from version ${h.body.agent?.version ?? '?'} (${h.body.status})` : h.reason;
    await new Promise((r) => setTimeout(r, 250));
  }
  return { ok: false, reason };
}

/** The release.json of an unpacked or installed release, checked, or INSTALL_FAILED naming the file and field. */
function readRelease(dir: string): ReleaseInfo {
  const file = path.join(dir, 'release.json');
  if (!fs.existsSync(file)) throw new TuError('INSTALL_FAILED', `${file} is missing: not a tu-agent release`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new TuError('INSTALL_FAILED', `${file} is not valid JSON (${(err as Error).message}): not a usable tu-agent release`);
  }
  const parsed = ReleaseInfoSchema.safeParse(raw);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ');
    throw new TuError('INSTALL_FAILED', `${file} is not a usable tu-agent release: ${fields}`);
  }
  return parsed.data;
}

/** <prefix>/<version>; the version is checked (RELEASE_VERSION), this makes sure once more that it stays inside. */
function versionDir(p: SystemPaths, version: string): string {
  const dest = path.join(p.prefix, version);
  if (path.dirname(dest) !== path.resolve(p.prefix)) throw new TuError('INSTALL_FAILED', `release version ${JSON.stringify(version)} is not a folder name`);
  return dest;
}

/** Whether to tell systemd about a changed unit: on the gateway itself, when systemd runs. */
const reloadSystemd = (o: UpdateOptions): boolean => o.root === '/' && systemdRuns();

const MB = 1024 * 1024;

/** The size of the tar inside a .tar.gz (gzip's trailer, modulo 4 GiB), or null when it cannot be read. */
function unpackedBytes(tarball: string): number | null {
  try {
    const fd = fs.openSync(tarball, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      if (size < 18) return null;
      const trailer = Buffer.alloc(4);
      fs.readSync(fd, trailer, 0, 4, size - 4);
      return trailer.readUInt32LE(0);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
}

/**
 * Unpacks the tarball into `staging`, or INSTALL_FAILED: a full filesystem says so, with the
 * space there is and the space needed; anything else means damaged (gzip and tar check it whole).
 * A full flash was reported as a damaged tarball to copy again, which cannot help.
 */
function unpack(tarball: string, staging: string): void {
  const freeBefore = (() => {
    const s = fs.statfsSync(staging);
    return s.bavail * s.bsize;
  })();
  try {
    execFileSync('tar', ['-xzf', path.resolve(tarball), '-C', staging], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? (err as Error).message;
    const detail = stderr.trim().split('\n').slice(-2).join('; ');
    if (isStorageError(new Error(stderr))) {
      const needs = unpackedBytes(tarball);
      throw new TuError(
        'INSTALL_FAILED',
        `not enough free space to unpack ${tarball} beside the running version: ${Math.floor(freeBefore / MB)} MB free on the filesystem of ${path.dirname(staging)}` +
          `${needs !== null ? `, it unpacks to about ${Math.ceil(needs / MB)} MB` : ''} (${detail}); nothing was changed: free space there, then run the update again`,
      );
    }
    throw new TuError('INSTALL_FAILED', `${tarball} cannot be unpacked, it is damaged or incomplete (${detail}); copy it to the gateway again and compare its checksum`);
  }
}

/**
 * Points `current` at `to`, installs its unit, restarts and waits for health from `version`.
 * Any failure on the way (the link, the unit, the restart command, reading the config's port)
 * is a result, not a throw: the caller must still roll back, or an unverified version would
 * stay `current`. The link goes first, so that a switch back is never held up by a unit.
 */
async function switchAndCheck(p: SystemPaths, to: string, version: string, o: UpdateOptions, wanted: HealthWanted = answering): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    switchLinkTo(p.current, to);
    installUnit(p, to, reloadSystemd(o), o.out);
    restart(o);
    return await waitHealthy(loadAgentConfig({ file: p.configFile }).http.port, version, o.timeoutMs, systemClock, wanted);
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

export async function updateCommand(tarball: string, o: UpdateOptions): Promise<number> {
  const p = systemPaths(o.root);
  if (!linkedDir(p.current)) throw new TuError('INSTALL_FAILED', `${p.current} does not exist; install first with tu-agent install`);
  if (!fs.existsSync(tarball)) throw new TuError('INSTALL_FAILED', `no such file: ${tarball}`);
  // From here until endUpdate, an interruption is undone at the next start (update-pending.ts).
  beginUpdate(p, reloadSystemd(o), o.out);
  const old = linkedDir(p.current)!;
  // The version `current` may name that has not answered healthy; the record stays while it does.
  let unverified: string | null = null;
  const staging = fs.mkdtempSync(path.join(p.prefix, '.update-'));
  try {
    unpack(tarball, staging);
    const unpacked = path.join(staging, 'tu-agent');
    const release = readRelease(unpacked);
    if (release.arch !== process.arch) throw new TuError('INSTALL_FAILED', `${tarball} is built for linux-${release.arch}; this gateway is linux-${process.arch}`);
    const dest = versionDir(p, release.version);
    if (old === dest) {
      o.out(`version ${release.version} is already running`);
      return 0;
    }
    const oldVersion = readRelease(old).version;
    const wanted = await healthWanted(p);
    fs.rmSync(dest, { recursive: true, force: true });
    // On disk before any link names it: tar leaves it in the page cache.
    fsyncTreeSync(unpacked);
    fs.renameSync(unpacked, dest);
    fsyncDirSync(p.prefix);
    const oldPrevious = linkedDir(p.previous);
    switchLinkTo(p.previous, old);
    o.out(`switching ${oldVersion} -> ${release.version}`);
    unverified = dest;
    const result = await switchAndCheck(p, dest, release.version, o, wanted);
    if (result.ok) {
      // Before anything else: from here a power cut completes the update instead of reverting it.
      markHealthy(p, release.version);
      unverified = null;
      o.out(`updated to ${release.version}: ${wanted.requireOk ? 'healthy' : 'answering (it was not ok before the update either; see tu-agent status)'}`);
      endUpdate(p);
      prune(p, o.out);
      return 0;
    }
    o.out(`version ${release.version} did not become healthy within ${o.timeoutMs} ms (${result.reason}); rolling back to ${oldVersion}`);
    const back = await switchAndCheck(p, old, oldVersion, o);
    // As if the update never happened: `previous` is again the version before the old one, unless
    // that was the version just refused (an update to the version `previous` named replaced it),
    // whose folder goes below: a `previous` naming nothing made rollback say there was none.
    if (oldPrevious && oldPrevious !== dest && fs.existsSync(oldPrevious)) switchLinkTo(p.previous, oldPrevious);
    else removeLink(p.previous);
    // Never remove the folder `current` still points at (the switch back itself failed).
    if (linkedDir(p.current) !== dest) {
      unverified = null;
      fs.rmSync(dest, { recursive: true, force: true });
    }
    o.out(back.ok ? `rolled back to ${oldVersion}: healthy` : `rolled back to ${oldVersion}, but it is not healthy either: ${back.reason}`);
    throw new TuError('UPDATE_UNHEALTHY', `update to ${release.version} failed (${result.reason}); ${oldVersion} restored`);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
    // Kept only while `current` names a version not seen healthy: the next start returns to the old one.
    if (unverified === null) endUpdate(p);
  }
}

/** `tu-agent recover`: the unit's ExecStartPre; puts back an update that was interrupted (update-pending.ts). */
export function recoverCommand(o: { root: string; out: (line: string) => void }): number {
  const state = recoverInterruptedUpdate(systemPaths(o.root), false, o.out);
  if (state === 'running') o.out('an update is running; left to it');
  return 0;
}

/**
 * Returns to the previous version the way an update goes to a new one: under the update lock and
 * its record (update-pending.ts), so a rollback cut short is undone at the next start, and back to
 * the version it left when the previous one does not answer healthy. It stayed on that version:
 * a previous version that no longer starts (its files damaged on flash, data it cannot read) left
 * the gateway down after a rollback of a healthy one (test/release.update.test.ts).
 */
export async function rollbackCommand(o: UpdateOptions): Promise<number> {
  const p = systemPaths(o.root);
  const before = linkedDir(p.current);
  // An interrupted update is put back first, and none may be running.
  beginUpdate(p, reloadSystemd(o), o.out);
  // True while `current` names a version not seen healthy: the record then stays for the next start.
  let unverified = false;
  try {
    const recovered = linkedDir(p.current);
    if (recovered && recovered !== before) {
      // That put `current` back on the version the cut-short update came from, which is what this
      // rollback asks for; the service still runs the version it left until restarted. Rolling
      // back once more went to the version before (or found none) with that one left running.
      const version = readRelease(recovered).version;
      const result = await switchAndCheck(p, recovered, version, o);
      if (!result.ok) throw new TuError('UPDATE_UNHEALTHY', `rolled back to ${version}, but it did not become healthy: ${result.reason}`);
      o.out(`rolled back to ${version}: answering`);
      return 0;
    }
    const prev = linkedDir(p.previous);
    const cur = linkedDir(p.current);
    if (!prev || !cur || !fs.existsSync(prev)) throw new TuError('INSTALL_FAILED', 'there is no previous version to roll back to');
    const version = readRelease(prev).version;
    const curVersion = readRelease(cur).version;
    const wanted = await healthWanted(p);
    switchLinkTo(p.previous, cur);
    o.out(`switching ${curVersion} -> ${version}`);
    unverified = true;
    const result = await switchAndCheck(p, prev, version, o, wanted);
    if (result.ok) {
      markHealthy(p, path.basename(prev));
      unverified = false;
      o.out(`rolled back to ${version}: ${wanted.requireOk ? 'healthy' : 'answering (it was not ok before the rollback either; see tu-agent status)'}`);
      return 0;
    }
    o.out(`version ${version} did not become healthy within ${o.timeoutMs} ms (${result.reason}); returning to ${curVersion}`);
    const back = await switchAndCheck(p, cur, curVersion, o);
    switchLinkTo(p.previous, prev);
    unverified = linkedDir(p.current) !== cur;
    o.out(back.ok ? `back on ${curVersion}: healthy` : `back on ${curVersion}, but it is not healthy either: ${back.reason}`);
    throw new TuError('UPDATE_UNHEALTHY', `rollback to ${version} failed (${result.reason}); ${curVersion} restored`);
  } finally {
    if (!unverified) endUpdate(p);
  }
}
