import { topics, type EventType } from '@tu/shared';
import { uploaded } from '../../test/support/fixtures.js';
import { analysisFlow, envelope, type Envelope } from '../../test/support/relay.js';

/**
 * The six events a gateway forwards for one photo (tu.image.uploaded, then the analysis the
 * tests send: started, recognition, comparison, metadata, completed — test/support/relay.ts
 * `analysisFlow`), with ids that carry the gateway's sequence number so the checker can count
 * lost, duplicated and out-of-order events per gateway from the stored rows alone.
 */
export const EVENTS_PER_ANALYSIS = 6;

/** `{gatewayId}:{seq}`: the CloudEvent id (shared/src/envelope.ts: 1..128 characters). */
export const eventId = (gatewayId: string, seq: number): string => `${gatewayId}:${seq}`;

export function seqOf(id: string): number {
  const i = id.lastIndexOf(':');
  return i < 0 ? NaN : Number(id.slice(i + 1));
}

export interface Outgoing {
  id: string;
  seq: number;
  topic: string;
  /** The event without its `time`, which is stamped when first sent (the subscribers' latency origin). */
  envelope: Envelope;
}

export function analysisEvents(gatewayId: string, firstSeq: number, machineId: string): Outgoing[] {
  const flow = analysisFlow(gatewayId, { machineId });
  const analysisId = flow[0]!.subject;
  const all = [envelope(gatewayId, 'tu.image.uploaded', { ...uploaded(gatewayId, analysisId), machineId }), ...flow];
  return all.map((e, k) => {
    const seq = firstSeq + k;
    const id = eventId(gatewayId, seq);
    return { id, seq, topic: topics.event(gatewayId, e.type as EventType), envelope: { ...e, id } };
  });
}
