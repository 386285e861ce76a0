/** Atomic symlink switch: a new link beside the old one, renamed over it (rename is atomic). */
import fs from 'node:fs';
import path from 'node:path';

export function switchLink(link: string, target: string): void {
  const tmp = path.join(path.dirname(link), `.${path.basename(link)}.${process.pid}.tmp`);
  fs.rmSync(tmp, { force: true });
  fs.symlinkSync(target, tmp);
  fs.renameSync(tmp, link);
}

/** The version folder a link points at, or null. */
export function linkTarget(link: string): string | null {
  try {
    return fs.readlinkSync(link);
  } catch {
    return null;
  }
}
