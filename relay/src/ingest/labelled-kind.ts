import type { CloudEvent } from '@tu/shared';

/**
 * Why a `recognition.labelled` event's `kind` contradicts its labels, or undefined when it
 * agrees (or the event is of another type). The gateway says `confirmation` exactly when the
 * technician's label is the one it had recognised (agent/src/teach/teacher.ts), and per-type
 * accuracy counts by `kind` (sql-storage.ts typeAccuracy): a "confirmation" of a corrected type
 * was counted as the gateway being right about a type it never said.
 */
export function labelledKindContradiction(event: CloudEvent): string | undefined {
  if (event.type !== 'recognition.labelled') return undefined;
  const d = event.data as { label?: unknown; previousLabel?: unknown; kind?: unknown };
  const want = d.label === d.previousLabel ? 'confirmation' : 'correction';
  if (d.kind === want) return undefined;
  return `recognition.labelled ${event.id.slice(0, 64)}: kind ${String(d.kind)} contradicts label ${String(d.label)} after the recognised ${String(d.previousLabel).slice(0, 64)} (a ${want}); fix the gateway that sent it`;
}
