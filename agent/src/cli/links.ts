/**
 * The version links under /opt/tu-agent (`current`, `previous`). Each names its version
 * folder relative to the link (`0.2.0`), never by absolute path: an image built with
 * `install --root DIR` is copied to a gateway where DIR does not exist, and an absolute link
 * (DIR/opt/tu-agent/0.2.0) would leave the unit's ExecStart pointing nowhere.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDirSync } from '../fs/durable.js';

/** Atomic and durable switch: a new link beside the old one, renamed over it, the directory fsynced. */
export function switchLink(link: string, target: string): void {
  const tmp = path.join(path.dirname(link), `.${path.basename(link)}.${process.pid}.tmp`);
  fs.rmSync(tmp, { force: true });
  fs.symlinkSync(target, tmp);
  fs.renameSync(tmp, link);
  fsyncDirSync(path.dirname(link));
}

/** Points `link` at the folder `dir` (absolute), by a path relative to the link's own folder. */
export function switchLinkTo(link: string, dir: string): void {
  switchLink(link, path.relative(path.dirname(link), dir));
}

/** The text of a link, or null when there is none. */
export function linkTarget(link: string): string | null {
  try {
    return fs.readlinkSync(link);
  } catch {
    return null;
  }
}

/**
 * The absolute folder a version link names, or null. Links written before they were relative
 * hold absolute paths; both resolve here.
 */
export function linkedDir(link: string): string | null {
  const t = linkTarget(link);
  return t === null ? null : path.resolve(path.dirname(link), t);
}

/** Removes a link (if any), durably. */
export function removeLink(link: string): void {
  fs.rmSync(link, { force: true });
  fsyncDirSync(path.dirname(link));
}
