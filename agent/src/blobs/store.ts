import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { TuError } from '@tu/shared';
import { fsyncDir, writeFileDurable } from '../fs/durable.js';

const SHA = /^[0-9a-f]{64}$/;

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
  /** Deletes a blob (quota eviction); returns the bytes freed (0: it was not there). */
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
 * Content-addressed blob store: {dataDir}/blobs/ab/cd/<sha256>. Writes go to a temp file,
 * are fsynced, renamed into place and the directory fsynced, so a stored blob survives
 * power loss; the same content is written once.
 */
export async function openBlobStore(dataDir: string): Promise<BlobStore> {
  const root = path.join(dataDir, 'blobs');
  await fs.mkdir(root, { recursive: true });
  // One walk at start (blobs/ab/cd/<sha>: two levels of at most 256 directories); then O(1) per put/remove.
  let used = 0;
  for (const a of await fs.readdir(root)) {
    for (const b of await fs.readdir(path.join(root, a)).catch(() => [])) {
      const dir = path.join(root, a, b);
      for (const f of await fs.readdir(dir).catch(() => [])) {
        if (SHA.test(f)) used += (await fs.stat(path.join(dir, f)).catch(() => ({ size: 0 }))).size;
      }
    }
  }
  const pathOf = (sha: string): string => {
    if (!SHA.test(sha)) throw new TuError('INVALID_REQUEST', `not a sha256: ${sha.slice(0, 80)}`);
    return path.join(root, sha.slice(0, 2), sha.slice(2, 4), sha);
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
    async remove(sha) {
      const file = pathOf(sha);
      const size = (await fs.stat(file).catch(() => undefined))?.size;
      if (size === undefined) return 0;
      await fs.rm(file, { force: true });
      used = Math.max(0, used - size);
      return size;
    },
    usedBytes: () => used,
  };
}
