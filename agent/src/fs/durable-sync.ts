/**
 * Synchronous durable writes for the installer's commands (agent/src/cli/), which run once and
 * block anyway: a release unpacked by tar is only in the page cache until the kernel writes it
 * back, and a link switched to it can reach the disk first; after a power cut the link would
 * then name files that came back empty (the gateway loses power whenever the ignition goes off).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const UNSUPPORTED = new Set(['EISDIR', 'EINVAL', 'EPERM', 'EBADF']);

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    // Some filesystems refuse fsync on a directory; nothing more can be done there.
    if (!UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    fs.closeSync(fd);
  }
}

/** fsyncs a directory, so that a rename, link or removal inside it survives a power cut. */
export function fsyncDirSync(dir: string): void {
  fsyncPath(dir);
}

/** fsyncs every file and directory under `dir` (symlinks are entries of their directory, synced with it). */
export function fsyncTreeSync(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) fsyncTreeSync(p);
    else if (e.isFile()) fsyncPath(p);
  }
  fsyncPath(dir);
}

/** Replaces `file` atomically and durably (temp file fsynced, renamed over it, directory fsynced). */
export function writeFileDurableSync(file: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'w', mode);
    try {
      fs.fchmodSync(fd, mode);
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fsyncDirSync(dir);
}
