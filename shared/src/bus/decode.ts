import { catalog } from '../catalog.js';
import { envelopeSchema, type CloudEvent } from '../envelope.js';
import type { ErrorCode } from '../errors.js';
import { parseTopic, type ParsedTopic } from '../topics.js';
import { hasEscapes, unstorableTextAt } from './storable-text.js';
import { summarise } from './summarise.js';

export interface Rejection {
  code: ErrorCode;
  message: string;
}

export type Decoded =
  | { ok: true; parsed: Exclude<ParsedTopic, { kind: 'unknown' | 'presence' | 'deadletter' | 'status' }>; event: CloudEvent }
  | { ok: false; rejection: Rejection };

const reject = (code: ErrorCode, message: string): Decoded => ({ ok: false, rejection: { code, message } });

/**
 * Validates one inbound event or command: size, topic, JSON, envelope, that the
 * envelope's type and gateway agree with the topic, that the source is the type's
 * producer, the data schema, and that no text holds what storage cannot keep (storable-text.ts).
 * Nothing reaches a handler unless all of these hold.
 */
export function decodeInbound(topic: string, payload: Buffer, opts: { gatewayId: string; maxPayloadBytes: number }): Decoded {
  if (payload.length > opts.maxPayloadBytes) {
    return reject('PAYLOAD_TOO_LARGE', `${payload.length} bytes exceeds the ${opts.maxPayloadBytes}-byte limit`);
  }
  const parsed = parseTopic(topic);
  if (parsed.kind !== 'event' && parsed.kind !== 'command') return reject('UNKNOWN_TOPIC', `not an event or command topic: ${topic.slice(0, 200)}`);
  if (parsed.gatewayId !== opts.gatewayId) return reject('WRONG_GATEWAY', `topic names gateway ${parsed.gatewayId}`);
  let json: unknown;
  const text = payload.toString('utf8');
  try {
    json = JSON.parse(text);
  } catch (err) {
    return reject('INVALID_JSON', (err as Error).message.slice(0, 200));
  }
  const unstorable = hasEscapes(text) ? unstorableTextAt(json) : undefined;
  if (unstorable) return reject('INVALID_DATA', `${unstorable.slice(0, 200)} holds a NUL character or an unpaired UTF-16 surrogate, which no store keeps; send the text without it`);
  const env = envelopeSchema.safeParse(json);
  if (!env.success) return reject('INVALID_ENVELOPE', summarise(env.error.issues));
  const e = env.data;
  if (e.type !== parsed.type) return reject('TYPE_TOPIC_MISMATCH', `envelope type ${e.type.slice(0, 100)} on topic for ${parsed.type}`);
  const [, , gw, producer] = e.source.split('/');
  if (gw !== opts.gatewayId) return reject('WRONG_GATEWAY', `source ${e.source} is not this gateway (${opts.gatewayId})`);
  const entry = catalog[parsed.type];
  if (producer !== entry.producer) return reject('WRONG_PRODUCER', `${parsed.type} is produced by ${entry.producer}, not ${producer}`);
  const data = entry.schema.safeParse(e.data);
  if (!data.success) return reject('INVALID_DATA', summarise(data.error.issues));
  if (hasAnalysisId(data.data) && data.data.analysisId !== e.subject) {
    return reject('INVALID_DATA', `subject ${e.subject.slice(0, 100)} differs from data.analysisId ${data.data.analysisId}`);
  }
  return { ok: true, parsed, event: { ...e, type: parsed.type, data: data.data } as CloudEvent };
}

function hasAnalysisId(d: unknown): d is { analysisId: string } {
  return typeof d === 'object' && d !== null && typeof (d as { analysisId?: unknown }).analysisId === 'string';
}
