import { durationBetween, endedStepStatus, type AnalysisResults, type AnyEvent, type FailureReason, type ImageRef, type StepName, type StepStatus, type StepSummary } from '@tu/shared';
import type { PlanStep } from '@tu/firmware-config';

export type AnalysisStatus = 'queued' | 'running' | 'completed' | 'failed';
export type { StepStatus };

export interface AttemptRecord {
  n: number;
  commandId: string;
  /** Epoch ms the attempt started (its timeout counts from here). */
  startedAt: number;
  deadline: number;
  instance?: string;
  sentAt?: number;
  endedAt?: number;
  /** `cancelled`: still in flight when the analysis ended (endUnfinishedSteps). */
  outcome?: 'completed' | 'failed' | 'timeout' | 'cancelled';
  error?: FailureReason;
  /** Times the command was sent again (instance gone, agent restarted). */
  resends: number;
}

export interface StepState {
  name: StepName;
  status: StepStatus;
  attempts: AttemptRecord[];
  /** Epoch ms when a retry is due, while waiting out a backoff. */
  retryAt?: number;
  startedAt?: number;
  endedAt?: number;
  error?: FailureReason;
}

/** Everything the orchestrator knows of one analysis; persisted as one row. */
export interface AnalysisState {
  analysisId: string;
  status: AnalysisStatus;
  machineId?: string;
  image: ImageRef;
  /** The uploaded file's name, when the client gave one (tu.image.uploaded). */
  fileName?: string;
  uploadedAt: string;
  uploadEventId: string;
  traceparent?: string;
  receivedAt: number;
  startedAt?: number;
  endedAt?: number;
  /**
   * The plan this analysis runs, fixed when it arrives (a config change does not alter running
   * analyses, and a restart resumes each with its own plan). Absent from rows written before
   * plans existed: those ran their steps in sequence (orchestrator.ts `planOf`).
   */
  plan?: PlanStep[];
  /** One per plan step, in plan order. */
  steps: StepState[];
  results: AnalysisResults;
  failure?: { step: StepName | null; reason: FailureReason };
  /** The terminal event, written ahead of publishing so a restart re-sends the same id. */
  terminal?: { event: AnyEvent; published: boolean };
  version: number;
}

export const isOpen = (s: AnalysisState): boolean => s.status === 'queued' || s.status === 'running' || (s.terminal !== undefined && !s.terminal.published);

/**
 * When an analysis ends, each step that neither completed nor failed says what became of it
 * (shared/src/step-status.ts): `cancelled` if it had started (its attempt in flight ends then,
 * cancelled; its answer is ignored from then on, orchestrator.ts onStepEvent), `skipped` if it
 * never started. Before, such steps stayed `running`, `waiting` or `pending` in the terminal
 * event and the stored row of an analysis long over (test/orchestrator.robustness.test.ts).
 */
export function endUnfinishedSteps(s: AnalysisState, at: number): void {
  for (const st of s.steps) {
    const status = endedStepStatus(st.status);
    if (status === st.status) continue;
    st.status = status;
    st.retryAt = undefined;
    if (status !== 'cancelled') continue;
    st.endedAt = at;
    const a = st.attempts[st.attempts.length - 1];
    if (a && a.endedAt === undefined) {
      a.endedAt = at;
      a.outcome = 'cancelled';
    }
  }
}

export const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

export function summarizeSteps(s: AnalysisState): StepSummary[] {
  return s.steps.map((st) => {
    const last = st.attempts[st.attempts.length - 1];
    const optional = s.plan?.find((p) => p.step === st.name)?.optional;
    return {
      step: st.name,
      status: st.status,
      ...(optional ? { optional } : {}),
      attempts: st.attempts.length,
      ...(st.startedAt !== undefined ? { startedAt: iso(st.startedAt) } : {}),
      ...(st.endedAt !== undefined ? { endedAt: iso(st.endedAt) } : {}),
      ...(st.startedAt !== undefined && st.endedAt !== undefined ? { durationMs: durationBetween(st.startedAt, st.endedAt) } : {}),
      ...(last?.instance ? { instance: last.instance } : {}),
      ...(st.error ? { error: st.error } : {}),
    };
  });
}

/** The public status of an analysis (for GET /api/v1/analyses/{id}). */
export interface AnalysisStatusView {
  analysisId: string;
  status: AnalysisStatus;
  machineId?: string;
  image: ImageRef;
  fileName?: string;
  uploadedAt: string;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  steps: (StepSummary & { timeline: { attempt: number; instance?: string; startedAt: string; endedAt?: string; outcome?: string; error?: FailureReason; resends: number }[] })[];
  results: AnalysisResults;
  failure?: { step: StepName | null; reason: FailureReason };
}

export function statusView(s: AnalysisState): AnalysisStatusView {
  const summaries = summarizeSteps(s);
  return {
    analysisId: s.analysisId,
    status: s.status,
    ...(s.machineId ? { machineId: s.machineId } : {}),
    image: s.image,
    ...(s.fileName ? { fileName: s.fileName } : {}),
    uploadedAt: s.uploadedAt,
    ...(s.startedAt !== undefined ? { startedAt: iso(s.startedAt) } : {}),
    ...(s.endedAt !== undefined ? { endedAt: iso(s.endedAt) } : {}),
    ...(s.startedAt !== undefined && s.endedAt !== undefined ? { durationMs: durationBetween(s.startedAt, s.endedAt) } : {}),
    steps: s.steps.map((st, i) => ({
      ...summaries[i]!,
      timeline: st.attempts.map((a) => ({
        attempt: a.n,
        ...(a.instance ? { instance: a.instance } : {}),
        startedAt: iso(a.startedAt)!,
        ...(a.endedAt !== undefined ? { endedAt: iso(a.endedAt) } : {}),
        ...(a.outcome ? { outcome: a.outcome } : {}),
        ...(a.error ? { error: a.error } : {}),
        resends: a.resends,
      })),
    })),
    results: s.results,
    ...(s.failure ? { failure: s.failure } : {}),
  };
}
