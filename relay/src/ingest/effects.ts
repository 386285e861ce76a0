import type { CloudEvent, DataOf } from '@tu/shared';
import type { AnalysisRow, EventEffects, MachineUpsert, StoredEvent } from '../storage/types.js';

/** The machine id an analysis belongs to: its machineId, else the gateway's default machine. */
export const machineIdFor = (gatewayId: string, machineId: string | undefined): string => machineId ?? `${gatewayId}:default`;

const iso = (t: string): string => new Date(t).toISOString();

/**
 * svc-machine-storage: what an accepted event changes beyond the events table.
 * - analysis.started: a `running` analysis (never overwrites a finished one);
 * - analysis.completed: upsert the machine from results.metadata.record and recognition
 *   (lastSeen/position/thumbnail only move forward in time) and the completed analysis;
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
      const rec = d.results.metadata?.record;
      const recognised = d.results.recognition?.machineType;
      const machine: MachineUpsert = {
        id: machineId,
        tenantId,
        gatewayId,
        type: rec?.type ?? (recognised && recognised !== 'unknown' ? recognised : null),
        brand: rec?.brand ?? null,
        model: rec?.model ?? null,
        serialNumber: rec?.serialNumber ?? null,
        seenAt: iso(rec?.lastSeenAt ?? d.completedAt),
        lastPosition: rec?.lastPosition ?? null,
        thumbnail: d.image.thumbnail ?? null,
      };
      const row: AnalysisRow = { id: d.analysisId, tenantId, gatewayId, machineId, status: 'completed', steps: d.steps, results: d.results, failure: null, startedAt: iso(d.startedAt), endedAt: iso(d.completedAt), sortTime: iso(d.completedAt) };
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
        results: d.results,
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
          embedding: d.embedding,
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
