import {
  completedData,
  envelope,
  failedData,
  startedData,
  stepFailedData,
  stepOutcome,
  uploadedData,
  type AnalysisView,
  type FailureReason,
  type ImageRef,
  type Results,
  type StepSummary,
} from './schemas';
import { CUT_SHORT_MEANING, endedStepStatus, isStepStatus } from '@tu/shared/internal/step-status';
import { bytes, ms } from './format';

export type Status = 'stored' | 'running' | 'completed' | 'failed';
export interface TimelineItem {
  key: string;
  /** When it happened; absent for what has not happened yet (a step still to start). */
  time?: string;
  kind: 'info' | 'ok' | 'retry' | 'fail';
  text: string;
  /** A step's state as last loaded ("running", "not started yet"): the step's next live event replaces it, so the card never says both. */
  provisional?: boolean;
}
/** What the UI knows about one analysis, built from live events (or loaded from the API). */
export interface Analysis {
  id: string;
  status: Status;
  image?: ImageRef;
  /** The uploaded file's name, when the upload gave one. */
  fileName?: string;
  items: TimelineItem[];
  steps?: StepSummary[];
  results?: Results;
  failure?: { step: string | null; reason: FailureReason };
  durationMs?: number;
  updatedAt: string;
}

const STEP_LABEL: Record<string, string> = { recognition: 'Recognition', comparison: 'Comparison', metadata: 'Metadata', nameplate: 'Nameplate' };
const STEP_OF: Record<string, string> = {
  'recognition.completed': 'recognition',
  'comparison.completed': 'comparison',
  'metadata.sorted': 'metadata',
  'nameplate.read': 'nameplate',
  'nameplate.failed': 'nameplate',
  'recognition.failed': 'recognition',
  'comparison.failed': 'comparison',
  'metadata.failed': 'metadata',
};

/**
 * The plan as a technician reads it: steps that start together side by side, then what waits for
 * them ("Recognition and Metadata (side by side), then Comparison"). Older gateways send no plan:
 * their steps ran one after another.
 */
export function planText(steps: string[], plan?: { step: string; needs: string[]; optional: boolean }[]): string {
  if (!plan) return steps.map(stepLabel).join(' → ');
  const level = new Map<string, number>();
  for (const p of plan) level.set(p.step, Math.max(-1, ...p.needs.map((n) => level.get(n) ?? 0)) + 1);
  const levels: string[][] = [];
  for (const p of plan) (levels[level.get(p.step)!] ??= []).push(`${stepLabel(p.step)}${p.optional ? ' (optional)' : ''}`);
  return levels
    .filter((l) => l.length > 0)
    .map((l) => (l.length > 1 ? `${l.slice(0, -1).join(', ')} and ${l.at(-1)!} (side by side)` : l[0]!))
    .join(', then ');
}
export const stepLabel = (s: string | null | undefined): string => (s ? (STEP_LABEL[s] ?? s) : 'before any step');
/** A step as the analysis's summary names it: "Nameplate (optional)" when the plan lets the analysis complete without it. */
const summaryLabel = (s: StepSummary): string => `${stepLabel(s.step)}${s.optional ? ' (optional)' : ''}`;
/*
 * A step has two durations and they differ (bus transit, queueing): the live event carries the
 * service's own working time (shared/src/bus/step-handler.ts), the stored analysis the
 * orchestrator's time from request to result (agent/src/orchestrator/state.ts). The timeline
 * shows one per step and says which.
 */
const serviceTime = (n: number): string => `${ms(n)} of work in the service`;
const requestTime = (n: number): string => `${ms(n)} from request to result`;
const wholeTime = (n: number): string => `${ms(n)} for the whole analysis`;

/**
 * Applies one WebSocket frame. Returns the updated analysis, or undefined when the frame
 * is not an event the timeline shows (or does not match its schema: dropped).
 */
export function applyFrame(prev: Analysis | undefined, raw: unknown): Analysis | undefined {
  const env = envelope.safeParse(raw);
  if (!env.success) return undefined;
  const e = env.data;
  const a: Analysis = prev ? { ...prev, items: prev.items.slice() } : { id: e.subject, status: 'stored', items: [], updatedAt: e.time };
  if (a.items.some((i) => i.key === e.id)) return prev; // duplicate delivery
  const add = (kind: TimelineItem['kind'], text: string) => a.items.push({ key: e.id, time: e.time, kind, text });
  a.updatedAt = e.time;
  const step = STEP_OF[e.type];
  const terminal = e.type === 'analysis.completed' || e.type === 'analysis.failed';
  if (step || terminal) a.items = a.items.filter((i) => !(i.provisional && (terminal || i.key === `s-${step}`)));
  switch (e.type) {
    case 'tu.image.uploaded': {
      const d = uploadedData.safeParse(e.data);
      if (!d.success) return undefined;
      a.image = { ...d.data.image, ...(a.image?.thumbnail ? { thumbnail: a.image.thumbnail } : {}) };
      if (d.data.fileName) a.fileName = d.data.fileName;
      add('info', `Photo stored (${bytes(d.data.image.bytes)})`);
      break;
    }
    case 'analysis.started': {
      const d = startedData.safeParse(e.data);
      if (!d.success) return undefined;
      if (a.status === 'stored') a.status = 'running';
      add('info', `Analysis started${d.data.queuedMs > 50 ? ` after ${ms(d.data.queuedMs)} in the queue` : ''}: ${planText(d.data.steps, d.data.plan)}`);
      break;
    }
    case 'recognition.completed':
    case 'comparison.completed':
    case 'metadata.sorted':
    case 'nameplate.read': {
      const d = stepOutcome.safeParse(e.data);
      if (!d.success) return undefined;
      if (a.status === 'stored') a.status = 'running';
      add('ok', `${stepLabel(step)} done: ${serviceTime(d.data.durationMs)}${d.data.attempt > 1 ? ` (attempt ${d.data.attempt})` : ''}`);
      break;
    }
    case 'recognition.failed':
    case 'comparison.failed':
    case 'metadata.failed':
    case 'nameplate.failed': {
      const d = stepFailedData.safeParse(e.data);
      if (!d.success) return undefined;
      const r = d.data.error;
      add(r.retryable ? 'retry' : 'fail', `${stepLabel(step)} attempt ${d.data.attempt} failed after ${serviceTime(d.data.durationMs)}: ${r.message} [${r.code}]${r.retryable ? ' (a retryable error: another attempt follows unless this was the last)' : ''}`);
      break;
    }
    case 'analysis.completed': {
      const d = completedData.safeParse(e.data);
      if (!d.success) return undefined;
      a.status = 'completed';
      a.image = d.data.image;
      a.steps = d.data.steps;
      a.results = d.data.results;
      a.durationMs = d.data.durationMs;
      const retried = d.data.steps.filter((s) => s.attempts > 1);
      // An optional step that failed (or timed out without any answer, so no step event said so) is stated before the end.
      for (const s of d.data.steps) {
        const text = unfinishedText(s, 'completed');
        if (text) a.items.push({ key: `${e.id}:${s.step}`, time: s.endedAt ?? e.time, kind: s.status === 'failed' ? 'fail' : 'info', text });
      }
      add('ok', `Completed: ${wholeTime(d.data.durationMs)}${retried.length ? ` (retried: ${retried.map((s) => `${stepLabel(s.step)} ×${s.attempts}`).join(', ')})` : ''}`);
      break;
    }
    case 'analysis.failed': {
      const d = failedData.safeParse(e.data);
      if (!d.success) return undefined;
      a.status = 'failed';
      if (d.data.image) a.image = d.data.image;
      a.steps = d.data.steps;
      a.results = d.data.results;
      a.failure = { step: d.data.failedStep, reason: d.data.reason };
      add('fail', `Failed at ${stepLabel(d.data.failedStep)}: ${d.data.reason.message} [${d.data.reason.code}]`);
      // The steps the failure left unfinished (or an optional one that failed on its own) are not dropped.
      for (const s of d.data.steps) {
        if (s.step === d.data.failedStep) continue;
        const text = unfinishedText(s, 'failed');
        if (text) a.items.push({ key: `${e.id}:${s.step}`, time: e.time, kind: s.status === 'failed' ? 'fail' : 'info', text });
      }
      break;
    }
    default:
      return undefined;
  }
  return a;
}

/**
 * What became of a step that did not complete, once the analysis has ended (undefined for a
 * completed step): an optional step's failure and that the analysis went on without it; a step
 * the end of the analysis cut short, `cancelled` (its answer is ignored from then on:
 * agent/src/orchestrator/state.ts endUnfinishedSteps) or `skipped`, with what that means
 * (shared/src/step-status.ts). Gateways older than those two statuses still say `running`,
 * `waiting` or `pending` of such a step: read as they would be said now.
 */
function unfinishedText(s: StepSummary, outcome: 'completed' | 'failed'): string | undefined {
  const label = summaryLabel(s);
  const without = outcome === 'completed' ? '; the analysis completed without it' : '';
  // A status this UI does not know (a newer gateway's) is shown as it came.
  if (!isStepStatus(s.status)) return `${label}: ${s.status}${without}`;
  const status = endedStepStatus(s.status);
  if (status === 'completed') return undefined;
  if (status === 'failed') return `${label} failed: ${s.error ? `${s.error.message} [${s.error.code}]` : 'no reason given'}${without}`;
  return `${label}: ${status} (${CUT_SHORT_MEANING[status]})${without}`;
}

/** A step of an analysis still running, as the status route reports it. */
function inProgressText(s: StepSummary): string {
  const label = summaryLabel(s);
  if (s.status === 'running') return `${label}: running${s.attempts > 1 ? ` (attempt ${s.attempts})` : ''}`;
  if (s.status === 'waiting') return `${label}: waiting to retry after ${s.attempts} attempt${s.attempts === 1 ? '' : 's'}`;
  return `${label}: not started yet`;
}

const byTime = (a: TimelineItem, b: TimelineItem): number => (a.time ?? '\uffff').localeCompare(b.time ?? '\uffff');

/**
 * An analysis loaded from GET /api/v1/analyses/:id (history, or after a reconnect). Every step
 * of the plan is listed, each stamped with its own end (or start) time, not the analysis's.
 */
export function fromView(v: AnalysisView, prev?: Analysis): Analysis {
  const status: Status = v.status === 'completed' ? 'completed' : v.status === 'failed' ? 'failed' : 'running';
  const ended = status === 'completed' || status === 'failed' ? status : undefined;
  const endTime = v.endedAt ?? v.uploadedAt;
  const done = v.steps
    .filter((s) => s.status === 'completed' || s.status === 'failed')
    .map(
      (s): TimelineItem => ({
        key: `s-${s.step}`,
        // Rows written before steps had their own times fall back to the analysis's.
        time: s.endedAt ?? s.startedAt ?? endTime,
        kind: s.status === 'completed' ? 'ok' : 'fail',
        text:
          `${summaryLabel(s)} ${s.status === 'completed' ? 'done' : 'failed'}${s.durationMs !== undefined ? `: ${requestTime(s.durationMs)}` : ''}${s.attempts > 1 ? ` after ${s.attempts} attempts` : ''}` +
          // The reason of the step that failed the analysis is on the "Failed at" line: said once.
          `${s.error && s.step !== v.failure?.step ? `: ${s.error.message} [${s.error.code}]` : ''}${s.status === 'failed' && status === 'completed' ? '; the analysis completed without it' : ''}`,
      }),
    );
  const open = v.steps
    .filter((s) => s.status !== 'completed' && s.status !== 'failed')
    .map(
      (s): TimelineItem =>
        ended
          ? { key: `s-${s.step}`, time: s.endedAt ?? endTime, kind: 'info', text: unfinishedText(s, ended)! }
          : { key: `s-${s.step}`, ...(s.startedAt ? { time: s.startedAt } : {}), kind: 'info', text: inProgressText(s), provisional: true },
    );
  const end: TimelineItem[] =
    status === 'completed'
      ? [{ key: 'end', time: endTime, kind: 'ok', text: `Completed${v.durationMs !== undefined ? `: ${wholeTime(v.durationMs)}` : ''}` }]
      : status === 'failed' && v.failure
        ? [{ key: 'end', time: endTime, kind: 'fail', text: `Failed at ${stepLabel(v.failure.step)}: ${v.failure.reason.message} [${v.failure.reason.code}]` }]
        : [];
  const items: TimelineItem[] = prev?.items.length
    ? prev.items
    : [
        { key: 'up', time: v.uploadedAt, kind: 'info', text: `Photo stored (${bytes(v.image.bytes)})` },
        ...(v.startedAt ? [{ key: 'st', time: v.startedAt, kind: 'info' as const, text: 'Analysis started' }] : []),
        // In the order they happened; then the end, then what it left unfinished (as the live card says it).
        ...done.sort(byTime),
        ...(status === 'failed' ? [...end, ...open] : [...open, ...end]),
      ];
  return {
    id: v.analysisId,
    status: prev && prev.status !== 'running' && prev.status !== 'stored' ? prev.status : status,
    image: v.image,
    ...(v.fileName ? { fileName: v.fileName } : prev?.fileName ? { fileName: prev.fileName } : {}),
    items,
    steps: v.steps,
    results: v.results,
    ...(v.failure ? { failure: v.failure } : {}),
    ...(v.durationMs !== undefined ? { durationMs: v.durationMs } : {}),
    updatedAt: v.endedAt ?? v.startedAt ?? v.uploadedAt,
  };
}
