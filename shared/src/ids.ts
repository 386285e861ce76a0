import { randomBytes, randomUUID } from 'node:crypto';

export const newId = (): string => randomUUID();

/** W3C trace context `traceparent` (version 00, sampled). */
export function newTraceparent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
}

/** A child span of the same trace: keeps the trace id, new parent id. */
export function childTraceparent(parent: string | undefined): string {
  const m = parent ? /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/.exec(parent) : null;
  if (!m) return newTraceparent();
  return `00-${m[1]}-${randomBytes(8).toString('hex')}-${m[2]}`;
}
