import { z } from 'zod';
import { sha256 } from './schemas/common.js';

/**
 * How an embedding travels (docs/messages.md). On the agent's local bus a recognition result
 * carries only a reference: the vector (float32, little-endian) is a file in the gateway's blob
 * store next to its photo, keyed by the photo's sha256 and the model id
 * (agent/src/blobs/derived.ts writes and reads it). The uplink packs the vector into the event
 * before it leaves for the relay (agent/src/uplink/enrich.ts), so the relay gets the numbers
 * in ~4/3 × 4 bytes per dimension instead of ~8 characters of JSON each.
 */
export const EMBEDDING_MAX_DIM = 4096;
const dim = z.number().int().min(1).max(EMBEDDING_MAX_DIM);

export const embeddingRef = z
  .object({
    /** The photo (blob-store key) and the backbone model id whose embedding it is. */
    ref: z.object({ sha256, model: z.string().min(1).max(128) }).strict(),
    dim,
    dtype: z.literal('float32'),
  })
  .strict();
export type EmbeddingRef = z.infer<typeof embeddingRef>;

/** Decoded bytes of a padded base64 string, from its length alone (no decoding). */
const base64Bytes = (s: string): number => (s.length / 4) * 3 - (s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0);

export const packedEmbedding = z
  .object({
    dtype: z.literal('float32'),
    dim,
    /** float32 little-endian, base64 (padded). */
    base64: z
      .string()
      .max(Math.ceil((EMBEDDING_MAX_DIM * 4) / 3) * 4)
      .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'base64: padded standard base64'),
  })
  .strict()
  .refine((p) => base64Bytes(p.base64) === p.dim * 4, { message: 'base64 must decode to dim × 4 bytes (float32)', path: ['base64'] });
export type PackedEmbedding = z.infer<typeof packedEmbedding>;

/**
 * The vector as JSON numbers, as gateways older than references and packing sent it. Still
 * accepted, so a relay keeps taking an un-updated gateway's results and labelled examples; no
 * current producer writes it.
 */
export const embeddingNumbers = z.array(z.number().finite()).min(1).max(EMBEDDING_MAX_DIM);

/**
 * The embedding field of a recognition result or a labelled example: a reference (local bus),
 * the packed vector (to the relay), or plain numbers (from older gateways).
 */
export const embeddingValue = z.union([embeddingRef, packedEmbedding, embeddingNumbers]);
export type EmbeddingValue = z.infer<typeof embeddingValue>;

export const isEmbeddingRef = (v: EmbeddingValue): v is EmbeddingRef => !Array.isArray(v) && 'ref' in v;

/** float32 little-endian bytes of a vector (the blob-store file format and the packed payload). */
export function embeddingBytes(vector: ArrayLike<number>): Buffer {
  const b = Buffer.alloc(vector.length * 4);
  for (let i = 0; i < vector.length; i++) b.writeFloatLE(vector[i]!, i * 4);
  return b;
}

/** Reads float32 little-endian bytes; undefined when the byte count is not 4 × `expectDim` (a truncated or foreign file) or a value is not finite. */
export function vectorFromBytes(bytes: Uint8Array, expectDim: number): number[] | undefined {
  if (bytes.byteLength !== expectDim * 4) return undefined;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Array<number>(expectDim);
  for (let i = 0; i < expectDim; i++) {
    const v = b.readFloatLE(i * 4);
    if (!Number.isFinite(v)) return undefined;
    out[i] = v;
  }
  return out;
}

export function pack(vector: ArrayLike<number>): PackedEmbedding {
  return { dtype: 'float32', dim: vector.length, base64: embeddingBytes(vector).toString('base64') };
}

/** The numbers of a packed embedding (validated: its length matches dim). Throws when a value is not finite. */
export function unpack(p: PackedEmbedding): number[] {
  const v = vectorFromBytes(Buffer.from(p.base64, 'base64'), p.dim);
  if (!v) throw new Error(`packed embedding: not ${p.dim} finite float32 values`);
  return v;
}
