import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Creates a small file durably and only if it does not exist yet (synchronous: for secrets and
 * keys read at start-up, on the gateway and in the relay's CLI): written to a temp file and
 * fsynced, then linked to its name (link fails when the name exists, so two processes creating it
 * at once end with one file), then the directory fsynced. False when the file already existed.
 * A file created with a plain write can come back empty after a power cut (its data was not on
 * disk yet when its directory entry was), and a gateway loses power whenever the ignition goes off.
 */
export function createFileDurableSync(file: string, data: string, mode: number): boolean {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx', mode);
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  } finally {
    // Linked or not, the temp name goes (a full disk must not leave it holding space).
    fs.rmSync(tmp, { force: true });
  }
  const d = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(d);
  } catch (err) {
    // Some filesystems refuse fsync on a directory; nothing more can be done there.
    if (!['EISDIR', 'EINVAL', 'EPERM'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    fs.closeSync(d);
  }
  return true;
}
