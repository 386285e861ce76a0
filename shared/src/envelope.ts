import { z } from 'zod';
import { isoTime } from './schemas/common.js';

export const TRACEPARENT_RE = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
export const GATEWAY_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * CloudEvents 1.0, structured JSON mode. `data` is validated separately against
 * the schema of `type` (see catalog.ts).
 */
export const envelopeSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1).max(128),
  source: z.string().regex(/^\/gateways\/[A-Za-z0-9_-]{1,64}\/[A-Za-z0-9._-]{1,64}$/, 'source must be /gateways/{gatewayId}/{service}'),
  type: z.string().min(1).max(128),
  time: isoTime,
  subject: z.string().min(1).max(128),
  datacontenttype: z.literal('application/json'),
  traceparent: z.string().regex(TRACEPARENT_RE).optional(),
  data: z.unknown(),
});

export type Envelope = z.infer<typeof envelopeSchema>;

/** An envelope whose data has been validated against the schema of its type. */
export interface CloudEvent<T extends string = string, D = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: T;
  time: string;
  subject: string;
  datacontenttype: 'application/json';
  traceparent?: string;
  data: D;
}
