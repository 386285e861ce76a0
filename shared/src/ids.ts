import { randomFillSync, randomUUID } from 'node:crypto';

export const newId = (): string => randomUUID();

/**
 * Random hex characters from a pool refilled 8 KiB at a time: every bus message gets a new span
 * id, and one getrandom call per 512 of them costs less than one per message (a CPU profile of
 * bench/orchestrator.bench.ts showed the per-call refills).
 */
const POOL_BYTES = 8192;
let pool = '';
let at = 0;
function randomHex(chars: number): string {
  if (at + chars > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES)).toString('hex');
    at = 0;
  }
  at += chars;
  return pool.slice(at - chars, at);
}

/** W3C trace context `traceparent` (version 00, sampled). */
export function newTraceparent(): string {
  return `00-${randomHex(32)}-${randomHex(16)}-01`;
}

/** A child span of the same trace: keeps the trace id, new parent id. */
export function childTraceparent(parent: string | undefined): string {
  const m = parent ? /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/.exec(parent) : null;
  if (!m) return newTraceparent();
  return `00-${m[1]}-${randomHex(16)}-${m[2]}`;
}
