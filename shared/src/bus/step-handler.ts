import { STEPS, type DataOf } from '../catalog.js';
import { childTraceparent } from '../ids.js';
import { REASON_MAX, type FailureReason, type StepName } from '../schemas/common.js';
import type { AnyEvent, BusClient, CommandOf } from './client.js';
import { isErrorCode, type ErrorCode } from '../errors.js';
import { boundedText } from './storable-text.js';

type Steps = typeof STEPS;
export type StepCommand<S extends StepName> = CommandOf<Steps[S]['command']>;
export type StepResult<S extends StepName> = DataOf<Steps[S]['completed']>['result'];

/** A step failure with a catalogue code (shared/src/errors.ts) and whether the orchestrator should retry. */
export class StepError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'StepError';
  }
}

export interface ServeStepOptions {
  /** How many answered commands are remembered to re-answer duplicates (a QoS 1 publish is at-least-once, and the orchestrator sends a command again after a restart). */
  rememberAnswers?: number;
  now?: () => number;
}

/**
 * Serves one analysis step on the bus: runs `work` for each command addressed to this
 * instance and publishes the step's success event or its `*.failed` twin. Duplicate
 * commands are answered with the same event (same id) without redoing the work.
 */
export async function serveStep<S extends StepName>(
  bus: BusClient,
  step: S,
  work: (cmd: StepCommand<S>) => Promise<StepResult<S>>,
  opts: ServeStepOptions = {},
): Promise<() => Promise<void>> {
  const def = STEPS[step];
  const remember = opts.rememberAnswers ?? 1000;
  const now = opts.now ?? (() => performance.now());
  const answers = new Map<string, AnyEvent | 'running'>();

  const remembered = (id: string, v: AnyEvent | 'running') => {
    answers.delete(id);
    answers.set(id, v);
    while (answers.size > remember) answers.delete(answers.keys().next().value!);
  };

  return bus.handleCommands(def.command, async (cmd) => {
    const seen = answers.get(cmd.id);
    if (seen === 'running') return;
    if (seen) return bus.republish(seen);
    remembered(cmd.id, 'running');
    const c = cmd as StepCommand<S>;
    const t0 = now();
    const base = { analysisId: c.data.analysisId, attempt: c.data.attempt, commandId: c.id, instance: bus.instanceId };
    const meta = { subject: c.subject, traceparent: childTraceparent(c.traceparent) };
    let event: AnyEvent;
    try {
      const result = await work(c);
      const durationMs = now() - t0;
      event = (await bus.publishEvent(def.completed, { ...base, durationMs, result } as never, meta)) as AnyEvent;
    } catch (err) {
      const durationMs = now() - t0;
      const error = toFailureReason(err);
      event = (await bus.publishEvent(def.failed, { ...base, durationMs, error }, meta)) as AnyEvent;
    }
    remembered(cmd.id, event);
  });
}

export function toFailureReason(err: unknown): FailureReason {
  if (err instanceof StepError) return { code: err.code, message: boundedText(err.message, REASON_MAX) || err.code, retryable: err.retryable };
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  return {
    // Only catalogue codes go on the bus: a library's own code (a Node errno, say) is an internal error.
    code: isErrorCode(code) ? code : 'INTERNAL_ERROR',
    message: boundedText(message, REASON_MAX) || 'unknown error',
    retryable: true,
  };
}
