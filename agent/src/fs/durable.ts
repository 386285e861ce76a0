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

/** Who owns a file written by writeFileDurable, and its permission bits. */
export interface DurableFileOptions {
  /** Permission bits of the file (default 0644), set on the temp file before it is renamed into place. */
  mode?: number;
  /** Owner and group to give the file before it is renamed into place (needs root to change them). */
  owner?: { uid: number; gid: number };
}

/**
 * Writes a file atomically and durably: temp file in the same directory, fsync, rename
 * over the target, fsync the directory. After it resolves the content survives power loss.
 * The temp file is created with the final mode and gets its owner before the rename, so a
 * secret is never readable by others, not even for the moment between create and rename,
 * and the file that replaces another is never briefly owned by the wrong user.
 */
export async function writeFileDurable(file: string, data: string | Uint8Array, o: DurableFileOptions = {}): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const mode = o.mode ?? 0o644;
  const h = await fs.open(tmp, 'w', mode);
  try {
    // open's mode is narrowed by the umask; chmod makes it exactly `mode`.
    if (o.mode !== undefined) await h.chmod(mode);
    if (o.owner) await h.chown(o.owner.uid, o.owner.gid);
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

/** Exclusive durable creation of a small file: one rule for the agent and the relay (shared/src/durable-file.ts). */
export { createFileDurableSync } from '@tu/shared/internal/durable-file';

/**
 * Removes the temp files writeFileDurable left for `file` when a power cut or kill -9 came
 * between creating and renaming them (`.{name}.{random}.tmp`): nothing ever reads them, and each
 * holds a whole copy of the file. Call it before the file's first write of a run.
 */
export async function removeStaleTemps(file: string): Promise<void> {
  const dir = path.dirname(file);
  const stale = new RegExp(`^\\.${path.basename(file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.[0-9a-f]{12}\\.tmp$`);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await Promise.all(names.filter((n) => stale.test(n)).map((n) => fs.rm(path.join(dir, n), { force: true })));
}
