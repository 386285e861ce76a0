import { randomBytes } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

/** Some platforms/filesystems refuse fsync on a directory; nothing more can be done there. */
const fsyncUnsupported = (err: unknown): boolean => ['EISDIR', 'EINVAL', 'EPERM', 'EBADF'].includes((err as NodeJS.ErrnoException).code ?? '');
/** The temp file writeFileDurable(Sync) renames over `file` (removeStaleTemps knows its name). */
const tempFor = (file: string): string => path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);

/** fsyncs a directory so a rename inside it survives power loss (no-op where unsupported). */
export async function fsyncDir(dir: string): Promise<void> {
  let h: fs.FileHandle | undefined;
  try {
    h = await fs.open(dir, 'r');
    await h.sync();
  } catch (err) {
    if (!fsyncUnsupported(err)) throw err;
  } finally {
    await h?.close();
  }
}

/*
 * Synchronous forms, for the installer's commands (agent/src/cli/), which run once and block
 * anyway: a release unpacked by tar is only in the page cache until the kernel writes it back, and
 * a link switched to it can reach the disk first; after a power cut the link would then name files
 * that came back empty (the gateway loses power whenever the ignition goes off).
 */

function fsyncPathSync(p: string): void {
  const fd = fsSync.openSync(p, 'r');
  try {
    fsSync.fsyncSync(fd);
  } catch (err) {
    if (!fsyncUnsupported(err)) throw err;
  } finally {
    fsSync.closeSync(fd);
  }
}

/** fsyncDir, blocking. */
export function fsyncDirSync(dir: string): void {
  fsyncPathSync(dir);
}

/** fsyncs every file and directory under `dir` (symlinks are entries of their directory, synced with it). */
export function fsyncTreeSync(dir: string): void {
  for (const e of fsSync.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) fsyncTreeSync(p);
    else if (e.isFile()) fsyncPathSync(p);
  }
  fsyncPathSync(dir);
}

/** writeFileDurable, blocking, with its mode only. */
export function writeFileDurableSync(file: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = tempFor(file);
  try {
    const fd = fsSync.openSync(tmp, 'w', mode);
    try {
      fsSync.fchmodSync(fd, mode);
      fsSync.writeFileSync(fd, data);
      fsSync.fsyncSync(fd);
    } finally {
      fsSync.closeSync(fd);
    }
    fsSync.renameSync(tmp, file);
  } finally {
    fsSync.rmSync(tmp, { force: true });
  }
  fsyncDirSync(path.dirname(file));
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
  const tmp = tempFor(file);
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
