import { isEmbeddingRef, pack, type AnalysisResults, type AnyEvent, type EmbeddingValue, type Logger } from '@tu/shared';
import { readEmbeddingSync, readThumbnailBase64Sync } from '../blobs/derived.js';
import type { BlobStore } from '../blobs/store.js';
import { TERMINAL_EVENT_TYPES } from './handoff.js';

/**
 * The uplink edge of "refs on the bus, inline at the edges" (docs/messages.md): an event bound
 * for the relay gets back what the local bus only references, so the relay and its GraphQL
 * clients see what they always saw:
 * - the results of analysis.completed/failed, which the bus leaves out (each went in its step's
 *   event): from the orchestrator's durable state (`resultsOf`), which holds them before the
 *   terminal event is published (agent/src/orchestrator/orchestrator.ts `finish`);
 * - the photo's thumbnail in `image.thumbnail` (tu.image.uploaded, analysis.started,
 *   analysis.completed/failed: the relay keeps the latest one per machine);
 * - every embedding reference (recognition.completed's result, analysis.completed/failed's
 *   results, recognition.labelled) as the packed vector (shared/src/embedding.ts).
 * Events without either are returned as they are (same object). What cannot be read is left
 * out (a thumbnail) or left as its reference (an embedding), with a warning: the event still
 * goes, its other facts matter more than the picture or the vector.
 *
 * Synchronous on purpose: the forwarder appends every event to the outbox in the callback that
 * received it, which keeps the bus's order and the terminal hand-off (handoff.ts) without a
 * queue; the reads are a thumbnail (≤ 9 KB) and a vector (4 bytes per dimension) beside the photo.
 */
export type EventEnricher = (event: AnyEvent) => AnyEvent;

export interface EnricherDeps {
  blobs: BlobStore;
  /** An analysis's results as the orchestrator stored them (undefined: not known here). */
  resultsOf?: (analysisId: string) => AnalysisResults | undefined;
  /**
   * The numbers the gateway keeps with an analysis's label (teach/examples.ts), for a labelled
   * event whose embedding file is gone (undefined: none kept for this photo).
   */
  labelledEmbedding?: (analysisId: string, sha256: string) => number[] | undefined;
  logger: Logger;
}

export function createEnricher(deps: EnricherDeps): EventEnricher {
  const log = deps.logger.child({ component: 'uplink-enrich' });
  /** `kept`: numbers kept elsewhere for a reference whose file is gone (a label's, below). */
  const packed = (v: EmbeddingValue, eventId: string, kept?: () => number[] | undefined): EmbeddingValue => {
    if (!isEmbeddingRef(v)) return v;
    try {
      return pack(readEmbeddingSync(deps.blobs, v));
    } catch (err) {
      const numbers = kept?.();
      if (numbers) return pack(numbers);
      log.warn({ eventId, err: (err as Error).message }, 'embedding not sent to the relay: its file could not be read; the event goes with the reference');
      return v;
    }
  };
  return (event) => {
    const src = event.data as Record<string, unknown>;
    let data: Record<string, unknown> | undefined;
    const edit = (): Record<string, unknown> => (data ??= { ...src });

    const image = src['image'] as { sha256?: unknown; thumbnail?: unknown } | undefined;
    if (image && typeof image.sha256 === 'string' && image.thumbnail === undefined && event.type !== 'recognition.labelled') {
      const thumbnail = readThumbnailBase64Sync(deps.blobs, image.sha256);
      if (thumbnail) edit()['image'] = { ...image, thumbnail };
    }
    const result = src['result'] as { embedding?: EmbeddingValue } | undefined;
    if (event.type === 'recognition.completed' && result?.embedding && isEmbeddingRef(result.embedding)) {
      edit()['result'] = { ...result, embedding: packed(result.embedding, event.id) };
    }
    if (TERMINAL_EVENT_TYPES.has(event.type) && src['results'] === undefined && deps.resultsOf) {
      const stored = deps.resultsOf(String(src['analysisId']));
      if (stored) edit()['results'] = stored;
      else log.warn({ eventId: event.id, analysisId: src['analysisId'] }, 'results not sent to the relay: the analysis is not in the orchestrator\'s state; the event goes without them');
    }
    const results = (data ?? src)['results'] as { recognition?: { embedding?: EmbeddingValue } } | undefined;
    const rec = results?.recognition;
    if (rec?.embedding && isEmbeddingRef(rec.embedding)) {
      edit()['results'] = { ...results, recognition: { ...rec, embedding: packed(rec.embedding, event.id) } };
    }
    const own = src['embedding'] as EmbeddingValue | undefined;
    if (event.type === 'recognition.labelled' && own && isEmbeddingRef(own)) {
      // The label store keeps the numbers after the storage quota removed the photo's files: a
      // label re-published after a restart, or a relabel, went with the reference, and the relay
      // refuses a labelled example without its vector (relay/src/ingest/pipeline.ts EMBEDDING_MISSING).
      // Neither: sent with the reference, and the warning says so.
      edit()['embedding'] = packed(own, event.id, () => deps.labelledEmbedding?.(String(src['analysisId']), String(src['sha256'])));
    }
    return data ? ({ ...event, data } as AnyEvent) : event;
  };
}
