import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { TuError } from '@tu/shared';
import { fsyncDir, writeFileDurable } from '../fs/durable.js';

const SHA = /^[0-9a-f]{64}$/;
/** A photo or one of its derived files (`<sha256>.<name>`, e.g. the thumbnail and the embedding: blobs/derived.ts). */
const STORED = /^[0-9a-f]{64}(\.[A-Za-z0-9._-]+)?$/;
const DERIVED_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,160}$/;
/**
 * The temp file of a photo or of its thumbnail being written (`.<sha256>[.thumb.jpg].<12 hex>.tmp`,
 * fs/durable.ts and replaceDerived below): renamed into place once written, so one still there at
 * start was cut short by a power cut or a kill -9.
 */
const AGENT_TEMP = /^\.[0-9a-f]{64}(\.thumb\.jpg)?\.[0-9a-f]{12}\.tmp$/;

export interface PutResult {
  sha256: string;
  bytes: number;
  /** False when the same content was already stored (stored once). */
  created: boolean;
}

export interface BlobStore {
  readonly root: string;
  /**
   * Stores bytes durably under their sha256 (idempotent). `sha256`: the bytes' hash when the
   * caller computed it as they arrived (http/read-image.ts hashes a raw body while it streams);
   * hashed here otherwise.
   */
  put(bytes: Uint8Array, sha256?: string): Promise<PutResult>;
  /** Absolute path of a blob (whether or not it exists). */
  pathOf(sha256: string): string;
  has(sha256: string): Promise<boolean>;
  read(sha256: string): Promise<Buffer>;
  /**
   * Stores a file derived from photo `sha256` next to it (`<sha256>.<name>`; replaced if there):
   * temp file and rename, so a reader never sees half a file; `durable` also fsyncs file and
   * directory (what a resumed analysis needs after a power cut). Writes of the same file run one
   * after another.
   */
  putDerived(sha256: string, name: string, bytes: Uint8Array, opts: { durable: boolean }): Promise<void>;
  /** A derived file's bytes; undefined when it is not there. */
  readDerived(sha256: string, name: string): Promise<Buffer | undefined>;
  /** readDerived, blocking: for callers that must keep their order without a queue (the uplink's outbox append; files of a few KB). */
  readDerivedSync(sha256: string, name: string): Buffer | undefined;
  /** Deletes a blob and every file derived from it (quota eviction); returns the bytes freed (0: none was there). */
  remove(sha256: string): Promise<number>;
  /** Bytes of all stored blobs (counted at open, kept up to date by put/remove). */
  usedBytes(): number;
}

export const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Bytes hashed per turn of the event loop (about 1 ms of SHA-256 on the gateway's CPU). */
const HASH_SLICE = 1 << 20;

/**
 * sha256 of bytes in slices, yielding to the event loop between them, so a large upload
 * never holds HTTP and the bus for its whole hash. (WebCrypto's thread-pool digest is no
 * cheaper here: it copies the bytes on the event loop first, which costs more than hashing.)
 */
export async function sha256Sliced(bytes: Uint8Array): Promise<string> {
  const h = createHash('sha256');
  for (let at = 0; at < bytes.byteLength; at += HASH_SLICE) {
    if (at > 0) await new Promise((r) => setImmediate(r));
    h.update(bytes.subarray(at, at + HASH_SLICE));
  }
  return h.digest('hex');
}

/**
 * Content-addressed blob store: {dataDir}/blobs/ab/cd/<sha256>, and beside each photo the files
 * derived from it (<sha256>.<name>: thumbnail, embeddings; blobs/derived.ts). Writes go to a temp file,
 * are fsynced, renamed into place and the directory fsynced, so a stored blob survives
 * power loss; the same content is written once.
 */
export async function openBlobStore(dataDir: string, opts: { removeStaleTemps?: boolean } = {}): Promise<BlobStore> {
  const root = path.join(dataDir, 'blobs');
  await fs.mkdir(root, { recursive: true });
  // One walk at start (blobs/ab/cd/<sha>: two levels of at most 256 directories); then O(1) per put/remove.
  let used = 0;
  for (const a of await fs.readdir(root)) {
    for (const b of await fs.readdir(path.join(root, a)).catch(() => [])) {
      const dir = path.join(root, a, b);
      for (const f of await fs.readdir(dir).catch(() => [])) {
        if (STORED.test(f)) used += (await fs.stat(path.join(dir, f)).catch(() => ({ size: 0 }))).size;
        // A photo's temp file left by a power cut during its upload holds a whole copy of it that
        // nothing reads, and that the quota does not count: each cut leaked up to
        // limits.maxUploadBytes of flash for good. Only the agent, before it takes uploads, removes
        // them: it alone writes photos and thumbnails (a service process opening the store while
        // the agent runs must not remove a write in progress; embeddings, which the vision
        // service may write from its own process, are left).
        else if (opts.removeStaleTemps && AGENT_TEMP.test(f)) await fs.rm(path.join(dir, f), { force: true });
      }
    }
  }
  const pathOf = (sha: string): string => {
    if (!SHA.test(sha)) throw new TuError('INVALID_REQUEST', `not a sha256: ${sha.slice(0, 80)}`);
    return path.join(root, sha.slice(0, 2), sha.slice(2, 4), sha);
  };
  const derivedPath = (sha: string, name: string): string => {
    if (!DERIVED_NAME.test(name)) throw new TuError('INVALID_REQUEST', `not a derived file name: ${name.slice(0, 80)}`);
    return `${pathOf(sha)}.${name}`;
  };
  const exists = async (file: string): Promise<boolean> => {
    try {
      await fs.access(file);
      return true;
    } catch {
      return false;
    }
  };
  /** Puts of the same content at the same time share one write (and count its bytes once). */
  const writing = new Map<string, Promise<PutResult>>();
  const write = async (sha: string, bytes: Uint8Array): Promise<PutResult> => {
    const file = pathOf(sha);
    if (await exists(file)) return { sha256: sha, bytes: bytes.byteLength, created: false };
    const dir = path.dirname(file);
    try {
      const made = await fs.mkdir(dir, { recursive: true });
      if (made) {
        await fsyncDir(path.dirname(dir));
        await fsyncDir(path.dirname(path.dirname(dir)));
      }
      await writeFileDurable(file, bytes);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new TuError('STORAGE_FAILED', `The gateway's storage could not take the photo (${code}: ${(err as Error).message}); nothing was accepted. Free space in dataDir and send it again.`, { cause: err });
    }
    used += bytes.byteLength;
    return { sha256: sha, bytes: bytes.byteLength, created: true };
  };
  /**
   * Writes of a derived file, one at a time per file: each counts the size it replaces, and two
   * writers at once would both count the same old size (the same photo uploaded twice together
   * writes its thumbnail twice) and leave usedBytes too high.
   */
  const derivedWrites = new Map<string, Promise<void>>();
  const replaceDerived = async (file: string, bytes: Uint8Array, durable: boolean): Promise<void> => {
    const before = (await fs.stat(file).catch(() => undefined))?.size ?? 0;
    await fs.mkdir(path.dirname(file), { recursive: true });
    if (durable) await writeFileDurable(file, bytes);
    else {
      // Atomic, not fsynced: after a power cut the file is whole or absent (its readers cope with absent).
      const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
      try {
        await fs.writeFile(tmp, bytes);
        await fs.rename(tmp, file);
      } catch (err) {
        await fs.rm(tmp, { force: true });
        throw err;
      }
    }
    used = Math.max(0, used - before) + bytes.byteLength;
  };
  return {
    root,
    pathOf,
    has: (sha) => exists(pathOf(sha)),
    async put(bytes, known) {
      const sha = known ?? (await sha256Sliced(bytes));
      const running = writing.get(sha);
      if (running) return { ...(await running), created: false };
      const p = write(sha, bytes);
      writing.set(sha, p);
      try {
        return await p;
      } finally {
        writing.delete(sha);
      }
    },
    read: (sha) => fs.readFile(pathOf(sha)),
    async putDerived(sha, name, bytes, opts) {
      const file = derivedPath(sha, name);
      const run = (derivedWrites.get(file) ?? Promise.resolve()).then(() => replaceDerived(file, bytes, opts.durable));
      const tail = run.catch(() => undefined);
      derivedWrites.set(file, tail);
      try {
        await run;
      } finally {
        if (derivedWrites.get(file) === tail) derivedWrites.delete(file);
      }
    },
    async readDerived(sha, name) {
      try {
        return await fs.readFile(derivedPath(sha, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    readDerivedSync(sha, name) {
      try {
        return readFileSync(derivedPath(sha, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    async remove(sha) {
      const file = pathOf(sha);
      const dir = path.dirname(file);
      const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => f === sha || f.startsWith(`${sha}.`));
      let freed = 0;
      for (const f of names) {
        const size = (await fs.stat(path.join(dir, f)).catch(() => undefined))?.size;
        if (size === undefined) continue;
        await fs.rm(path.join(dir, f), { force: true });
        used = Math.max(0, used - size);
        freed += size;
      }
      return freed;
    },
    usedBytes: () => used,
  };
}
