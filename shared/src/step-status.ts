/**
 * The status of one step in an analysis's summary (`stepSummary`, shared/src/schemas/messages.ts).
 * Plain data with no imports, so both UIs (agent/ui, relay/ui) bundle these words and their
 * meanings instead of a copy.
 *
 * While the analysis runs a step is `pending` (not started: its needs have not completed),
 * `waiting` (started: waiting for a live handler, or waiting out a retry's delay) or `running`
 * (its command is with a handler). Once the analysis has ended every step has one of the ended
 * statuses: it `completed`, it `failed`, or it did neither because the analysis ended first:
 * `cancelled` if it had started, `skipped` if it never did (agent/src/orchestrator/state.ts
 * endUnfinishedSteps). A finished analysis that said a step was still "running" was untrue.
 */
export const STEP_STATUSES = ['pending', 'waiting', 'running', 'completed', 'failed', 'cancelled', 'skipped'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];
export type EndedStepStatus = Exclude<StepStatus, 'pending' | 'waiting' | 'running'>;

export const isStepStatus = (s: string): s is StepStatus => (STEP_STATUSES as readonly string[]).includes(s);

/**
 * What a step is once its analysis has ended. The orchestrator applies it when the analysis ends;
 * the UIs read a summary of an ended analysis through it too, since gateways older than
 * `cancelled` and `skipped` left `running`, `waiting` and `pending` in their terminal events.
 */
export function endedStepStatus(status: StepStatus): EndedStepStatus {
  if (status === 'running' || status === 'waiting') return 'cancelled';
  if (status === 'pending') return 'skipped';
  return status;
}

/** What the two statuses of a step the end of its analysis cut short mean, as both UIs say it. */
export const CUT_SHORT_MEANING: Record<Exclude<EndedStepStatus, 'completed' | 'failed'>, string> = {
  cancelled: 'it had started, but the analysis ended before it finished; an answer arriving later is ignored',
  skipped: 'it never started: the analysis ended before it could',
};
