import { isEmbeddingRef, unpack, type CloudEvent, type EmbeddingValue } from '@tu/shared';

/**
 * The relay stores and serves embeddings as numbers, as it always did (labelled examples'
 * `embedding: [Float!]!`, analysis results JSON): gateways send them packed (float32 base64,
 * agent/src/uplink/enrich.ts; docs/messages.md), so a validated event is unpacked here, once,
 * before fan-out and storage. A reference the gateway could not resolve stays as it is (the
 * results JSON shows it); a labelled example without its numbers is refused by the caller.
 */
export function unpackEmbeddings(event: CloudEvent): CloudEvent {
  const src = event.data as Record<string, unknown> | null;
  if (!src || typeof src !== 'object') return event;
  let data: Record<string, unknown> | undefined;
  const numbers = (v: EmbeddingValue | number[]): EmbeddingValue | number[] => (Array.isArray(v) || isEmbeddingRef(v) ? v : unpack(v));
  const result = src['result'] as { embedding?: EmbeddingValue } | undefined;
  if (event.type === 'recognition.completed' && result?.embedding) data = { ...src, result: { ...result, embedding: numbers(result.embedding) } };
  const results = src['results'] as { recognition?: { embedding?: EmbeddingValue } } | undefined;
  const rec = results?.recognition;
  if (rec?.embedding) data = { ...(data ?? src), results: { ...results, recognition: { ...rec, embedding: numbers(rec.embedding) } } };
  const own = src['embedding'] as EmbeddingValue | undefined;
  if (event.type === 'recognition.labelled' && own) data = { ...(data ?? src), embedding: numbers(own) };
  return data ? { ...event, data } : event;
}

/** True when a labelled example still carries a reference: the gateway could not read the vector, and an example without it trains nothing. */
export function labelledWithoutVector(event: CloudEvent): boolean {
  const own = (event.data as { embedding?: unknown } | null)?.embedding;
  return event.type === 'recognition.labelled' && !Array.isArray(own);
}

/** The numbers of an embedding field after unpackEmbeddings (a reference left in it throws: labelledWithoutVector refuses those first). */
export function vectorOf(v: EmbeddingValue | number[]): number[] {
  if (Array.isArray(v)) return v;
  if (isEmbeddingRef(v)) throw new Error('embedding reference without its vector');
  return unpack(v);
}
