import fs from 'node:fs';
import path from 'node:path';
import type { SystemPaths } from './system-paths.js';

/** Whether process `pid` is alive (EPERM: alive, owned by another user). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the copies an install or update cut short (kill -9, a power cut: tar keeps writing after
 * the updater dies) left in the prefix: each may hold a whole release, and nothing else would ever
 * remove them from the gateway's small flash. A copy named with its process's pid
 * (`.staging-<version>-<pid>` of install, `.pending-<pid>.tmp` of update's record) goes once that
 * process is gone; an update's unpack folder (`.update-*`, named by mkdtemp) only when the caller
 * holds the update lock (update-pending.ts) and has not made its own yet.
 */
export function removeCutShortCopies(p: SystemPaths, out: (l: string) => void, o: { updateLockHeld: boolean }): void {
  for (const name of fs.readdirSync(p.prefix)) {
    const pid = /^\.staging-.+-(\d+)$/.exec(name)?.[1] ?? /^\.pending-(\d+)\.tmp$/.exec(name)?.[1];
    const dead = pid !== undefined ? !processExists(Number(pid)) : o.updateLockHeld && name.startsWith('.update-');
    if (!dead) continue;
    fs.rmSync(path.join(p.prefix, name), { recursive: true, force: true });
    out(`removed ${name}, left by an update or install that was cut short`);
  }
}
