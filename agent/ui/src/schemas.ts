import * as z from 'zod/mini';

/**
 * Light runtime checks of what the UI receives (API answers, WebSocket frames): only the
 * fields the UI shows, unknown fields pass through untouched. A frame that does not match
 * is dropped and counted, never rendered half-parsed.
 */
const str = z.string();
const num = z.number();
const opt = <T extends z.ZodMiniType>(t: T) => z.optional(t);

export const errorBody = z.object({ error: z.object({ code: str, message: str }) });
export const accepted = z.object({ analysisId: str });

export const failureReason = z.object({ code: str, message: str, retryable: z.boolean() });
export type FailureReason = z.infer<typeof failureReason>;

export const imageRef = z.object({ sha256: str, contentType: str, bytes: num, width: opt(num), height: opt(num), thumbnail: opt(str) });
export type ImageRef = z.infer<typeof imageRef>;

const label = z.object({ label: str, score: num });
export const recognition = z.object({
  machineType: str,
  confidence: num,
  unknownReason: opt(str),
  topK: z.array(label),
  model: z.object({ id: str, version: str, backend: str }),
});
export const comparison = z.object({
  verdict: z.enum(['match', 'mismatch', 'unknown']),
  reasons: z.array(str),
  typeCheck: z.object({ registeredType: z.nullable(str), recognizedType: str, match: z.nullable(z.boolean()) }),
  bestMatch: z.nullable(z.object({ sha256: str, similarity: num, source: str })),
  nearDuplicate: z.object({ duplicate: z.boolean(), hammingDistance: opt(num) }),
  scores: z.object({ typeConfidence: num, bestSimilarity: z.nullable(num) }),
});
const gps = z.object({ latitude: num, longitude: num, altitude: opt(num) });
export const metadata = z.object({
  exif: z.object({
    captureTime: opt(str),
    captureLocalTime: opt(z.object({ time: str, offset: str, offsetFrom: opt(str) })),
    captureTimePlausible: opt(z.boolean()),
    captureTimeProblem: opt(z.object({ reason: str, message: str })),
    gps: opt(gps),
    camera: opt(z.object({ make: opt(str), model: opt(str) })),
  }),
  quality: z.object({ width: num, height: num, megapixels: num }),
  warnings: z.array(str),
  category: str,
  categoryBasis: opt(z.enum(['image', 'image-and-recognition'])),
  /** lastSeenAtSource: which time the machine record's sighting uses (shared/src/schemas/results.ts). */
  record: z.object({ photoQuality: str, lastSeenAt: opt(str), lastSeenAtSource: opt(z.enum(['capture-time', 'capture-time-latest', 'upload-time'])) }),
});
export const results = z.object({ recognition: opt(recognition), comparison: opt(comparison), metadata: opt(metadata) });
export type Results = z.infer<typeof results>;

export const stepSummary = z.object({
  step: str,
  status: str,
  /** The plan marks the step optional: the analysis completes without it when it fails. */
  optional: opt(z.boolean()),
  attempts: num,
  /** The step's own start and end (a reopened timeline stamps each step with these, not the analysis's end). */
  startedAt: opt(str),
  endedAt: opt(str),
  durationMs: opt(num),
  instance: opt(str),
  error: opt(failureReason),
});
export type StepSummary = z.infer<typeof stepSummary>;

/** GET /api/v1/analyses/:id */
export const analysisView = z.object({
  analysisId: str,
  status: str,
  image: imageRef,
  fileName: opt(str),
  uploadedAt: str,
  startedAt: opt(str),
  endedAt: opt(str),
  durationMs: opt(num),
  steps: z.array(stepSummary),
  results,
  failure: opt(z.object({ step: z.nullable(str), reason: failureReason })),
});
export type AnalysisView = z.infer<typeof analysisView>;

/** GET /api/v1/analyses */
export const analysisList = z.object({
  analyses: z.array(z.object({ analysisId: str, status: str, createdAt: str, updatedAt: str, fileName: opt(str), machineType: opt(str) })),
});
export type AnalysisListItem = z.infer<typeof analysisList>['analyses'][number];

const uplinkError = z.object({ code: str, message: str, at: str });
/** The head refitted to the technicians' examples (agent/src/teach/refitter.ts RefitState). */
const refit = z.object({ used: num, skipped: num, otherBackbone: opt(num), older: opt(num), headId: str, at: str });
/** The data directory (agent/src/http/routes/health.ts `storage`): free space, the photo quota, failed writes. */
const storage = z.object({
  state: str,
  since: opt(str),
  where: opt(str),
  freeBytes: opt(z.nullable(num)),
  totalBytes: opt(z.nullable(num)),
  minFreeBytes: num,
  writeErrors: num,
  quota: z.object({ maxBytes: num, usedBytes: num, evictedBlobs: num, evictedHistory: num, refused: num }),
});
export type StorageHealth = z.infer<typeof storage>;
const uplink = z.object({
  state: str,
  reason: opt(str),
  url: opt(str),
  queueDepth: opt(num),
  queueBytes: opt(num),
  oldestUndeliveredAgeMs: opt(z.nullable(num)),
  /** How long the relay has not been connected (null while online; absent from older agents). */
  disconnectedMs: opt(z.nullable(num)),
  lastDeliveryAt: opt(z.nullable(str)),
  /** Events lost on the way to the relay, counted over the outbox's life (agent/src/uplink/outbox.ts). */
  dropped: opt(num),
  refused: opt(num),
  expired: opt(num),
  whenFull: opt(str),
  full: opt(z.boolean()),
  /** The outbox's bounds as configured (absent from older agents). */
  limits: opt(z.object({ maxEvents: num, maxBytes: num, maxAgeMs: num })),
  lastError: opt(z.nullable(uplinkError)),
});
export type UplinkHealth = z.infer<typeof uplink>;
/** GET /api/v1/health */
export const health = z.object({
  status: str,
  /** Why the status is degraded (one sentence each). */
  reasons: opt(z.array(str)),
  gatewayId: str,
  agent: opt(z.object({ version: str })),
  uptimeS: num,
  broker: z.object({ up: z.boolean(), clients: num }),
  services: z.record(str, z.object({ step: str, optional: opt(z.boolean()), inProcess: z.boolean(), up: z.boolean(), instances: z.array(z.object({ instanceId: str, inflight: num })) })),
  model: z.object({ state: str, error: opt(z.object({ code: str, message: str })), id: opt(str), version: opt(str), backend: opt(str), kind: opt(str), head: opt(z.nullable(z.object({ id: str }))), refit: opt(z.nullable(refit)) }),
  orchestrator: z.object({ running: num, queued: num }),
  uplink,
  storage: opt(storage),
});
export type Health = z.infer<typeof health>;
/** GET /api/v1/health without a token granting view: the public summary (agent/src/http/routes/health.ts). */
export const publicHealth = z.object({ status: str, gatewayId: str, detail: str });

export const machine = z.object({
  id: opt(str),
  type: opt(str),
  brand: opt(str),
  model: opt(str),
  serialNumber: opt(str),
  name: opt(str),
});
export type Machine = z.infer<typeof machine>;
export const machineView = z.object({
  machine: z.nullable(machine),
  references: z.array(z.object({ sha256: str, machineType: opt(str), addedAt: str })),
});
export type MachineView = z.infer<typeof machineView>;
export const referenceAdded = z.object({ replaced: z.boolean(), count: num });

/** A CloudEvent frame from /api/v1/events; data is checked per type by the timeline. */
export const envelope = z.object({ id: str, type: str, subject: str, time: str, data: z.record(str, z.unknown()) });
export type Envelope = z.infer<typeof envelope>;

export const stepOutcome = z.object({ attempt: num, instance: str, durationMs: num });
export const stepFailedData = z.extend(stepOutcome, { error: failureReason });
/** A plan step as analysis.started carries it (shared/src/schemas/messages.ts); absent from older gateways. */
const planStep = z.object({ step: str, needs: z.array(str), optional: z.boolean() });
export const startedData = z.object({ steps: z.array(str), plan: opt(z.array(planStep)), queuedMs: num, image: imageRef });
export const uploadedData = z.object({ image: imageRef, via: opt(str), fileName: opt(str) });
export const completedData = z.object({ image: imageRef, durationMs: num, steps: z.array(stepSummary), results });
export const failedData = z.object({ image: opt(imageRef), failedStep: z.nullable(str), reason: failureReason, steps: z.array(stepSummary), results });

/** A technician's stored label (POST /api/v1/analyses/{id}/label, agent/src/http/routes/labels.ts). */
export const storedLabel = z.object({ correctionId: str, analysisId: str, label: str, previousLabel: str, kind: z.enum(['confirmation', 'correction']), by: str, at: str });
export type StoredLabel = z.infer<typeof storedLabel>;
export const labelAnswer = z.object({ created: z.boolean(), label: storedLabel });
export const currentLabel = z.object({ label: z.nullable(storedLabel) });
