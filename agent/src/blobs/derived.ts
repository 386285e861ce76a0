import { embeddingBytes, isEmbeddingRef, StepError, TuError, unpack, vectorFromBytes, type EmbeddingRef, type EmbeddingValue } from '@tu/shared';
import type { BlobStore } from './store.js';

/**
 * Files derived from a photo, kept beside it in the blob store so the local bus carries only
 * references (docs/messages.md): the dashboard thumbnail (JPEG) and the backbone embedding
 * of each model (float32 little-endian). The quota evicts them with their photo (store.remove).
 */
export const THUMBNAIL_FILE = 'thumb.jpg';

/** A model id as a file-name part: anything but letters, digits, `.`, `_`, `-` becomes `_`. */
export const embeddingFile = (model: string): string => `${model.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\./, '_')}.f32`;

/** Stores the thumbnail (raw JPEG) beside the photo; atomic but not fsynced: a thumbnail lost to a power cut is only a missing picture. */
export async function writeThumbnail(blobs: BlobStore, sha256: string, jpeg: Uint8Array): Promise<void> {
  await blobs.putDerived(sha256, THUMBNAIL_FILE, jpeg, { durable: false });
}

/** The photo's thumbnail as base64 (the form imageRef.thumbnail takes); undefined when there is none or it cannot be read. */
export async function readThumbnailBase64(blobs: BlobStore, sha256: string): Promise<string | undefined> {
  const b = await blobs.readDerived(sha256, THUMBNAIL_FILE).catch(() => undefined);
  return b && b.byteLength > 0 ? b.toString('base64') : undefined;
}

/** readThumbnailBase64, blocking (the uplink's in-order append: uplink/enrich.ts). */
export function readThumbnailBase64Sync(blobs: BlobStore, sha256: string): string | undefined {
  try {
    const b = blobs.readDerivedSync(sha256, THUMBNAIL_FILE);
    return b && b.byteLength > 0 ? b.toString('base64') : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stores a photo's embedding durably (fsync: an analysis resumed after a power cut reads it in
 * the comparison step) and returns the reference the recognition result carries on the bus.
 */
export async function writeEmbedding(blobs: BlobStore, sha256: string, model: string, vector: ArrayLike<number>): Promise<EmbeddingRef> {
  await blobs.putDerived(sha256, embeddingFile(model), embeddingBytes(vector), { durable: true });
  return { ref: { sha256, model }, dim: vector.length, dtype: 'float32' };
}

/**
 * The numbers of an embedding field: a packed one is decoded, a reference read from the blob
 * store. A missing, truncated or unreadable file is EMBEDDING_MISSING (a TuError, status 409),
 * with what happened and what to do.
 */
export async function readEmbedding(blobs: BlobStore, value: EmbeddingValue): Promise<number[]> {
  if (Array.isArray(value)) return value;
  if (!isEmbeddingRef(value)) return unpack(value);
  return checked(value, await blobs.readDerived(value.ref.sha256, embeddingFile(value.ref.model)).catch((err: unknown) => unreadable(value, err)));
}

/** readEmbedding, blocking (the uplink's in-order append: uplink/enrich.ts). */
export function readEmbeddingSync(blobs: BlobStore, value: EmbeddingValue): number[] {
  if (Array.isArray(value)) return value;
  if (!isEmbeddingRef(value)) return unpack(value);
  let bytes: Buffer | undefined;
  try {
    bytes = blobs.readDerivedSync(value.ref.sha256, embeddingFile(value.ref.model));
  } catch (err) {
    unreadable(value, err);
  }
  return checked(value, bytes);
}

const describe = (value: EmbeddingRef): string => `the embedding of photo ${value.ref.sha256.slice(0, 12)}… (model ${value.ref.model.slice(0, 64)})`;

function unreadable(value: EmbeddingRef, err: unknown): never {
  throw new TuError('EMBEDDING_MISSING', `${describe(value)} could not be read from the blob store (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); upload the photo again to analyse it anew.`, { cause: err });
}

function checked(value: EmbeddingRef, bytes: Buffer | undefined): number[] {
  const what = describe(value);
  if (!bytes) throw new TuError('EMBEDDING_MISSING', `${what} is not in the blob store (the storage quota removed it with the photo, or the file was deleted); upload the photo again to analyse it anew.`);
  const v = vectorFromBytes(bytes, value.dim);
  if (!v) throw new TuError('EMBEDDING_MISSING', `${what} is damaged (${bytes.byteLength} bytes, ${value.dim} float32 values expected); upload the photo again to analyse it anew.`);
  return v;
}

/** readEmbedding for an analysis step: EMBEDDING_MISSING becomes a final step failure (retrying reads the same file). */
export async function readEmbeddingForStep(blobs: BlobStore, value: EmbeddingValue): Promise<number[]> {
  try {
    return await readEmbedding(blobs, value);
  } catch (err) {
    if (err instanceof TuError) throw new StepError(err.code, err.message, false);
    throw new StepError('EMBEDDING_MISSING', `the embedding could not be decoded: ${(err as Error).message}; upload the photo again to analyse it anew.`, false);
  }
}
