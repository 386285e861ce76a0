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
import { comparisonResult, metadataResult, recognitionResult } from './results.js';

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

export const analysisStarted = z.object({
  analysisId,
  machineId: machineId.optional(),
  image: imageRef,
  steps: z.array(stepName).min(1).max(3),
  startedAt: isoTime,
  /** Milliseconds the upload waited in the orchestrator's queue before starting. */
  queuedMs: durationMs,
});

/** What the steps before this one produced; later steps build on earlier results. */
const previousResults = z.object({
  recognition: recognitionResult.optional(),
  comparison: comparisonResult.optional(),
});

const commandBase = z.object({
  analysisId,
  attempt,
  machineId: machineId.optional(),
  image: imageRef,
  /** Deadline of this attempt; a handler may give up after it. */
  deadline: isoTime,
});

export const recognitionRequest = commandBase;
export const comparisonRequest = commandBase.extend({
  registered: registeredMachine.optional(),
  previous: previousResults,
});
export const metadataRequest = commandBase.extend({
  registered: registeredMachine.optional(),
  uploadedAt: isoTime,
  previous: previousResults,
});

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
export const stepFailed = stepOutcome.extend({ error: failureReason });

export const stepSummary = z.object({
  step: stepName,
  status: z.enum(['pending', 'waiting', 'running', 'completed', 'failed']),
  attempts: z.number().int().min(0),
  startedAt: isoTime.optional(),
  endedAt: isoTime.optional(),
  durationMs: durationMs.optional(),
  instance: z.string().optional(),
  error: failureReason.optional(),
});
export type StepSummary = z.infer<typeof stepSummary>;

export const analysisResults = z.object({
  recognition: recognitionResult.optional(),
  comparison: comparisonResult.optional(),
  metadata: metadataResult.optional(),
});
export type AnalysisResults = z.infer<typeof analysisResults>;

export const analysisCompleted = z.object({
  analysisId,
  machineId: machineId.optional(),
  image: imageRef,
  uploadedAt: isoTime,
  startedAt: isoTime,
  completedAt: isoTime,
  durationMs,
  steps: z.array(stepSummary),
  results: analysisResults,
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
  /** Results of the steps that did complete. */
  results: analysisResults,
});
