import { randomBytes, randomUUID } from 'node:crypto';

export const newId = (): string => randomUUID();

/** W3C trace context `traceparent` (version 00, sampled). */
export function newTraceparent(): string {
  return `00-${randomBytes(16).toString('hex')}-${spanId()}-01`;
}

/** 16 hex characters from the UUID generator's entropy pool (much cheaper than randomBytes per call). */
const spanId = (): string => randomUUID().replace(/-/g, '').slice(0, 16);

/** A child span of the same trace: keeps the trace id, new parent id. */
export function childTraceparent(parent: string | undefined): string {
  const m = parent ? /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/.exec(parent) : null;
  if (!m) return newTraceparent();
  return `00-${m[1]}-${spanId()}-${m[2]}`;
}
