import type { CloudEvent } from '@tu/shared';

/** The part of mqemitter / mqemitter-redis the relay and mercurius use. */
export interface Emitter {
  on(topic: string, listener: (message: EmitterMessage, done: () => void) => void, callback?: () => void): unknown;
  emit(message: EmitterMessage, callback?: (error?: Error) => void): void;
  removeListener(topic: string, listener: (message: EmitterMessage, done: () => void) => void, callback?: () => void): unknown;
  close(callback: () => void): void;
}
export interface EmitterMessage {
  topic: string;
  [k: string]: unknown;
}

/** What a graphql-ws subscriber receives for one event. */
export interface AnalysisEventPayload {
  id: string;
  type: string;
  analysisId: string;
  gatewayId: string;
  time: string;
  data: unknown;
}

/** Emitter topics: one per tenant and gateway, so a subscription is `t/{tenant}/{gw}` or `t/{tenant}/+`. */
export const fanoutTopic = (tenantId: string, gatewayId: string | '+'): string => `t/${tenantId}/${gatewayId}`;

export function toPayload(e: CloudEvent, gatewayId: string): AnalysisEventPayload {
  return { id: e.id, type: e.type, analysisId: e.subject, gatewayId, time: e.time, data: e.data };
}
