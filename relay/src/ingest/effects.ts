import { CLOCK_DRIFT_TOLERANCE_MS, EARLIEST_PLAUSIBLE_CAPTURE, type CloudEvent, type DataOf } from '@tu/shared';
import type { AnalysisRow, EventEffects, LastSeenSource, MachineUpsert, StoredEvent } from '../storage/types.js';
import { vectorOf } from './unpack.js';

type MachineRecord = NonNullable<NonNullable<DataOf<'analysis.completed'>['results']>['metadata']>['record'];

/**
 * The machine's type is the registered one only: a type the gateway took from the photo's
 * recognition (nothing registered) is evidence and is kept as the machine's last recognition.
 * Gateways older than `typeSource` send the recognised type in the same field; for those, the
 * comparison's registeredType (null when nothing was registered) tells the two apart.
 */
function registeredType(rec: MachineRecord | undefined, comparedRegisteredType: string | null): string | null {
  if (!rec?.type) return null;
  if (rec.typeSource) return rec.typeSource === 'registered' ? rec.type : null;
  return comparedRegisteredType ? rec.type : null;
}

/**
 * Whether the record carries a registration (any registered field): then it is the gateway's
 * whole registration at the time of the photo. A record without one (nothing registered, or a
 * gateway older than these fields) leaves the stored registration alone.
 */
const isRegistration = (rec: MachineRecord | undefined): boolean =>
  !!rec && (rec.typeSource === 'registered' || [rec.machineId, rec.name, rec.brand, rec.model, rec.serialNumber].some((v) => v !== undefined));

/** The machine id an analysis belongs to: its machineId, else the gateway's default machine. */
export const machineIdFor = (gatewayId: string, machineId: string | undefined): string => machineId ?? `${gatewayId}:default`;

const iso = (t: string): string => new Date(t).toISOString();

/**
 * The time that orders a completed analysis' sighting of its machine (lastSeen, and with it the
 * position, thumbnail and recognition, which only move forward), which time it is, and why the
 * gateway's own time was refused. Storage keeps the newest sighting, so one time in the future
 * would outrank every real photo until then (issue 8 finding 10). Rules, in order:
 * 1. the gateway's record time (a plausible capture time, or its upload time); without a record,
 *    the analysis' completion time;
 * 2. a capture time later than the gateway's upload time (beyond the clock-drift tolerance), or
 *    before 2000, is replaced by the upload time (gateways older than their own check send it);
 * 3. a time later than the relay received the event (beyond the tolerance) is replaced by the
 *    receipt time: the gateway's clock, not the machine, is ahead.
 */
export function seenTime(
  rec: MachineRecord | undefined,
  d: Pick<DataOf<'analysis.completed'>, 'uploadedAt' | 'completedAt'>,
  receivedAt: string,
): { seenAt: string; source: LastSeenSource; note: string | null } {
  const ms = (t: string) => Date.parse(t);
  let seenAt = iso(rec?.lastSeenAt ?? d.completedAt);
  let source: LastSeenSource = rec?.lastSeenAt ? (rec.lastSeenAtSource ?? 'gateway') : 'completed-time';
  let note: string | null = null;
  if (source !== 'upload-time' && source !== 'completed-time') {
    if (ms(seenAt) > ms(d.uploadedAt) + CLOCK_DRIFT_TOLERANCE_MS || ms(seenAt) < ms(EARLIEST_PLAUSIBLE_CAPTURE)) {
      note = `the photo's time ${seenAt} is implausible (${ms(seenAt) < ms(EARLIEST_PLAUSIBLE_CAPTURE) ? 'before 2000' : `after its upload at ${iso(d.uploadedAt)}`}); the upload time is used`;
      seenAt = iso(d.uploadedAt);
      source = 'upload-time';
    }
  }
  if (ms(seenAt) > ms(receivedAt) + CLOCK_DRIFT_TOLERANCE_MS) {
    note = `the gateway's time ${seenAt} is after the relay received the event (${receivedAt}): the gateway's clock is ahead; the receipt time is used`;
    seenAt = receivedAt;
    source = 'relay-receipt';
  }
  return { seenAt, source, note };
}

/**
 * svc-machine-storage: what an accepted event changes beyond the events table.
 * - analysis.started: a `running` analysis (never overwrites a finished one);
 * - analysis.completed: upsert the machine from results.metadata.record (the registered machine:
 *   id, name, type, brand, model, serial) and keep the photo's recognition as evidence beside the
 *   type (lastSeen/position/thumbnail/recognition only move forward in time, ordered by
 *   `seenTime`: never a time after the relay received the event), and the analysis;
 * - analysis.failed: the failed analysis, and the machine row if it does not exist yet
 *   (a failed analysis does not change the machine's fields);
 * - recognition.labelled: the technician's labelled example (idempotent by correction id).
 */
export function effectsOf(event: CloudEvent, gatewayId: string, tenantId: string, receivedAt: string = new Date().toISOString()): EventEffects {
  switch (event.type) {
    case 'analysis.started': {
      const d = event.data as DataOf<'analysis.started'>;
      const machineId = machineIdFor(gatewayId, d.machineId);
      const row: AnalysisRow = { id: d.analysisId, tenantId, gatewayId, machineId, status: 'running', steps: d.steps.map((step) => ({ step, status: 'pending' })), results: null, failure: null, startedAt: iso(d.startedAt), endedAt: null, sortTime: iso(d.startedAt) };
      return { analysis: { row, mode: 'insert-only' } };
    }
    case 'analysis.completed': {
      const d = event.data as DataOf<'analysis.completed'>;
      const machineId = machineIdFor(gatewayId, d.machineId);
      // A gateway that could not read its own state sends no results (shared/src/schemas/messages.ts).
      const results = d.results ?? {};
      const rec = results.metadata?.record;
      const recognition = results.recognition;
      const typeCheck = results.comparison?.typeCheck;
      // The registered machine's fields describe this analysis' machine only when the upload named
      // no other machine (the comparison service applies the same rule, agent/src/services/comparison/service.ts).
      const forRegistered = !d.machineId || !rec?.machineId || d.machineId === rec.machineId;
      const registered = forRegistered ? rec : undefined;
      const seen = seenTime(rec, d, receivedAt);
      const machine: MachineUpsert = {
        id: machineId,
        tenantId,
        gatewayId,
        type: registeredType(registered, typeCheck?.registeredType ?? null),
        brand: registered?.brand ?? null,
        model: registered?.model ?? null,
        serialNumber: registered?.serialNumber ?? null,
        name: registered?.name ?? null,
        registeredId: registered?.machineId ?? null,
        registration: isRegistration(registered),
        seenAt: seen.seenAt,
        seenSource: seen.source,
        seenNote: seen.note,
        lastPosition: rec?.lastPosition ?? null,
        thumbnail: d.image.thumbnail ?? null,
        recognition: recognition ? { machineType: recognition.machineType, confidence: recognition.confidence, analysisId: d.analysisId } : null,
        // The gateway's own judgement (threshold included, agent/src/services/comparison/verdict.ts).
        typeMatch: forRegistered ? (typeCheck?.match ?? null) : null,
      };
      const row: AnalysisRow = { id: d.analysisId, tenantId, gatewayId, machineId, status: 'completed', steps: d.steps, results, failure: null, startedAt: iso(d.startedAt), endedAt: iso(d.completedAt), sortTime: iso(d.completedAt) };
      return { machine, analysis: { row, mode: 'upsert' } };
    }
    case 'analysis.failed': {
      const d = event.data as DataOf<'analysis.failed'>;
      const machineId = machineIdFor(gatewayId, d.machineId);
      const row: AnalysisRow = {
        id: d.analysisId,
        tenantId,
        gatewayId,
        machineId,
        status: 'failed',
        steps: d.steps,
        results: d.results ?? {},
        failure: { failedStep: d.failedStep, ...d.reason },
        startedAt: null,
        endedAt: iso(d.failedAt),
        sortTime: iso(d.failedAt),
      };
      return { machine: { id: machineId, tenantId, gatewayId }, analysis: { row, mode: 'upsert' } };
    }
    case 'recognition.labelled': {
      const d = event.data as DataOf<'recognition.labelled'>;
      return {
        labelled: {
          id: d.correctionId,
          tenantId,
          gatewayId,
          analysisId: d.analysisId,
          machineId: d.machineId ?? null,
          sha256: d.sha256,
          embedding: vectorOf(d.embedding),
          label: d.label,
          previousLabel: d.previousLabel,
          kind: d.kind,
          by: d.by,
          at: iso(d.at),
          modelId: d.model.id,
          modelVersion: d.model.version,
          headId: d.model.headId,
          receivedAt,
        },
      };
    }
    default:
      return {};
  }
}

export function storedEvent(event: CloudEvent, gatewayId: string, tenantId: string, receivedAt: string): StoredEvent {
  return { id: event.id, tenantId, gatewayId, type: event.type, subject: event.subject, time: iso(event.time), receivedAt, data: event.data };
}
