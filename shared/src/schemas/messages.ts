import { z } from 'zod';
import {
  analysisId,
  attempt,
  durationMs,
  failureReason,
  gatewayId,
  imageRef,
  isoTime,
  machineId,
  registeredMachine,
  stepName,
} from './common.js';
import { comparisonResult, metadataResult, nameplateResult, recognitionResult } from './results.js';
import { STEP_STATUSES } from '../step-status.js';

/**
 * The name of the uploaded file as the client gave it (multipart filename or the
 * X-File-Name header, agent/src/http/read-image.ts): shown to the technician, never used
 * as a path. A base name, no control characters, at most 255 characters.
 */
export const uploadFileName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[^\p{Cc}/\\]+$/u, 'a file name without path separators or control characters');

/** Published by the agent's image intake once the photo is in the blob store. */
export const imageUploaded = z.object({
  analysisId,
  gatewayId,
  machineId: machineId.optional(),
  image: imageRef,
  uploadedAt: isoTime,
  via: z.enum(['api', 'ui', 'cli']).default('api'),
  fileName: uploadFileName.optional(),
});

/** One step of an analysis plan as it travels: what it needs and whether the analysis may end without it. */
export const planStep = z.object({
  step: stepName,
  needs: z.array(stepName).max(stepName.options.length),
  optional: z.boolean(),
});
export type PlanStepWire = z.infer<typeof planStep>;

export const analysisStarted = z.object({
  analysisId,
  machineId: machineId.optional(),
  image: imageRef,
  /** The plan's step names, in the plan's order (kept beside `plan` for readers older than it). */
  steps: z.array(stepName).min(1).max(stepName.options.length),
  /** The analysis plan this analysis runs (shared/src/plan.ts): each step with what it needs. Absent from gateways older than plans. */
  plan: z.array(planStep).min(1).max(stepName.options.length).optional(),
  startedAt: isoTime,
  /** Milliseconds the upload waited in the orchestrator's queue before starting. */
  queuedMs: durationMs,
});

export const analysisResults = z.object({
  recognition: recognitionResult.optional(),
  comparison: comparisonResult.optional(),
  metadata: metadataResult.optional(),
  nameplate: nameplateResult.optional(),
});
export type AnalysisResults = z.infer<typeof analysisResults>;

/**
 * Every step's command has this one shape, so the orchestrator builds them all alike
 * (agent/src/orchestrator/orchestrator.ts) and a new step needs no orchestrator code.
 * `previous` holds the results of the steps this one needs (its plan entry's `needs`), nothing else.
 */
const stepCommand = z.object({
  analysisId,
  attempt,
  machineId: machineId.optional(),
  image: imageRef,
  /** Deadline of this attempt; a handler may give up after it. */
  deadline: isoTime,
  /** The machine registered to this gateway, when one is. */
  registered: registeredMachine.optional(),
  uploadedAt: isoTime,
  previous: analysisResults,
});

export const recognitionRequest = stepCommand;
/**
 * The comparison reads four fields of the recognition result (agent/src/services/comparison/service.ts;
 * `unknownReason` tells "no machine" from "unsure of the type"). Its command declares just those,
 * so the bus, which sends what the schema parsed, carries no labels, timings or model facts it
 * never reads (docs/messages.md).
 */
export const comparisonRequest = stepCommand.extend({
  previous: z.object({ recognition: recognitionResult.pick({ machineType: true, confidence: true, unknownReason: true, embedding: true }).optional() }),
});
export const metadataRequest = stepCommand;
export const nameplateRequest = stepCommand;

const stepOutcome = z.object({
  analysisId,
  attempt,
  /** The command envelope id this answers. */
  commandId: z.string().min(1).max(128),
  /** The handler instance that did the work. */
  instance: z.string().min(1).max(128),
  durationMs,
});

export const recognitionCompleted = stepOutcome.extend({ result: recognitionResult });
export const comparisonCompleted = stepOutcome.extend({ result: comparisonResult });
export const metadataSorted = stepOutcome.extend({ result: metadataResult });
export const nameplateRead = stepOutcome.extend({ result: nameplateResult });
export const stepFailed = stepOutcome.extend({ error: failureReason });

export const stepSummary = z.object({
  step: stepName,
  /**
   * In a terminal event an ended status: completed, failed, cancelled (it had started, and the
   * analysis ended first) or skipped (it never started); shared/src/step-status.ts says each.
   * Gateways older than the last two left running, waiting or pending there (docs/messages.md).
   */
  status: z.enum(STEP_STATUSES),
  /** The plan marks the step optional: the analysis completes without it when it fails. */
  optional: z.boolean().optional(),
  attempts: z.number().int().min(0),
  startedAt: isoTime.optional(),
  endedAt: isoTime.optional(),
  durationMs: durationMs.optional(),
  instance: z.string().optional(),
  error: failureReason.optional(),
});
export type StepSummary = z.infer<typeof stepSummary>;

export const analysisCompleted = z.object({
  analysisId,
  machineId: machineId.optional(),
  image: imageRef,
  uploadedAt: isoTime,
  startedAt: isoTime,
  completedAt: isoTime,
  durationMs,
  steps: z.array(stepSummary),
  /**
   * Every step's result. Absent on the gateway's local bus: each result travelled in its step's
   * event, and the orchestrator keeps them durably; the edges put them back (docs/messages.md), so
   * the relay and the technician UI always get them. A relay treats an event without them as
   * having none (a gateway that could not read its own state still reports the analysis).
   */
  results: analysisResults.optional(),
});

export const analysisFailed = z.object({
  analysisId,
  machineId: machineId.optional(),
  image: imageRef.optional(),
  uploadedAt: isoTime.optional(),
  failedAt: isoTime,
  /** The step that failed, or null when the analysis failed before or between steps (e.g. queue full). */
  failedStep: stepName.nullable(),
  reason: failureReason,
  steps: z.array(stepSummary),
  /** Results of the steps that did complete; absent on the local bus, as in analysis.completed. */
  results: analysisResults.optional(),
});
