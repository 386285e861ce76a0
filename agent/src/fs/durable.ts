import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

/** fsyncs a directory so a rename inside it survives power loss (no-op where unsupported). */
export async function fsyncDir(dir: string): Promise<void> {
  let h: fs.FileHandle | undefined;
  try {
    h = await fs.open(dir, 'r');
    await h.sync();
  } catch (err) {
    // Some platforms/filesystems refuse fsync on a directory; nothing more we can do there.
    if ((err as NodeJS.ErrnoException).code !== 'EISDIR' && (err as NodeJS.ErrnoException).code !== 'EINVAL' && (err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
  } finally {
    await h?.close();
  }
}

/**
 * Writes a file atomically and durably: temp file in the same directory, fsync, rename
 * over the target, fsync the directory. After it resolves the content survives power loss.
 */
export async function writeFileDurable(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const h = await fs.open(tmp, 'w', 0o644);
  try {
    await h.writeFile(data);
    await h.sync();
  } catch (err) {
    // A full disk leaves a partial temp file: remove it, or it holds the space it could not use.
    await h.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await h.close();
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}
