import { z } from 'zod';
import { embeddingValue } from '../embedding.js';
import { gps, machineId, sha256, unit, isoTime } from './common.js';

const label = z.object({ label: z.string().min(1).max(128), score: unit });

export const recognitionResult = z.object({
  /** A machine type known to the head (e.g. `excavator`), or `unknown`. */
  machineType: z.string().min(1).max(64),
  /**
   * For a named type: the head's probability of that type. For `unknown` it is NOT a type's
   * confidence (agent/src/services/vision/head.ts): the negative class's probability ("no
   * machine"), or 1 − the best type's probability when that was below the calibrated
   * threshold (`unknownReason` names the type, its probability and the threshold); 0 without
   * a head. Displays show no percentage next to `unknown` (agent/ui/src/components/ResultCard.tsx).
   */
  confidence: unit,
  unknownReason: z.string().max(500).optional(),
  topK: z.array(label).max(20),
  imagenetTopK: z.array(label.extend({ index: z.number().int().min(0).max(1000) })).max(20),
  /**
   * The backbone embedding: on the local bus a reference to the float32 file in the blob store
   * (agent/src/blobs/derived.ts); packed inline once the uplink sends it to the relay
   * (shared/src/embedding.ts, docs/messages.md).
   */
  embedding: embeddingValue,
  model: z.object({
    id: z.string().min(1).max(128),
    version: z.string().min(1).max(64),
    backend: z.enum(['wasm', 'tensorflow', 'cpu', 'onnxruntime']),
    head: z
      .object({
        id: z.string().min(1).max(128),
        /** The head's types; absent from results of newer gateways (the head id names them; the gateway's health lists them). */
        labels: z.array(z.string()).max(200).optional(),
        trainedAt: isoTime,
      })
      .nullable(),
  }),
  timings: z.object({ decodeMs: z.number().nonnegative(), inferenceMs: z.number().nonnegative(), headMs: z.number().nonnegative() }),
  image: z.object({ width: z.number().int().positive(), height: z.number().int().positive() }),
});
export type RecognitionResult = z.infer<typeof recognitionResult>;

export const comparisonResult = z.object({
  verdict: z.enum(['match', 'mismatch', 'unknown']),
  reasons: z.array(z.string().max(500)).max(20),
  typeCheck: z.object({
    registeredType: z.string().nullable(),
    recognizedType: z.string(),
    match: z.boolean().nullable(),
  }),
  bestMatch: z
    .object({ sha256, similarity: z.number().min(-1).max(1), source: z.enum(['reference', 'history']) })
    .nullable(),
  nearDuplicate: z.object({
    duplicate: z.boolean(),
    sha256: sha256.optional(),
    hammingDistance: z.number().int().min(0).max(64).optional(),
  }),
  scores: z.object({ typeConfidence: unit, bestSimilarity: z.number().min(-1).max(1).nullable() }),
  thresholds: z.object({
    similarityMatch: z.number(),
    similarityMismatch: z.number(),
    duplicateHamming: z.number().int(),
    minTypeConfidence: z.number(),
  }),
});
export type ComparisonResult = z.infer<typeof comparisonResult>;

export const qualityWarning = z.enum(['blurred', 'too_dark', 'too_bright', 'too_small', 'low_contrast']);

/**
 * The camera's wall-clock capture time as EXIF stores it (`YYYY-MM-DDTHH:MM:SS[.sss]`, no
 * designator) and its UTC offset, or `unknown` when the photo does not say it: a time without
 * a zone is still a fact (agent/src/services/metadata/exif.ts reads it; sort.ts decides how
 * to place it in time). `offsetFrom` says how a known offset was established.
 */
export const captureLocalTime = z
  .object({
    time: z.iso.datetime({ local: true }).regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?$/, 'camera local time without a zone'),
    offset: z.union([z.string().regex(/^[+-](0\d|1[0-4]):[0-5]\d$/, 'UTC offset +HH:MM'), z.literal('unknown')]),
    offsetFrom: z.enum(['exif-offset', 'gps-utc']).optional(),
  })
  .refine((c) => (c.offset === 'unknown') === (c.offsetFrom === undefined), 'offsetFrom is given exactly when the offset is known');
export type CaptureLocalTime = z.infer<typeof captureLocalTime>;

/**
 * How far a photo's capture time (or a gateway's time) may lie after the clock it is judged
 * against (the gateway's upload time, the relay's receipt time) before it is implausible:
 * camera and gateway clocks drift by minutes, not hours. A later time is a camera set wrong
 * or a forged EXIF (issue 8 finding 10); it must never order the machine's last sighting,
 * or no real photo could move it on again. Used by agent/src/services/metadata/sort.ts and
 * relay/src/ingest/effects.ts.
 */
export const CLOCK_DRIFT_TOLERANCE_MS = 10 * 60_000;
/** Capture times before this (camera clock never set, e.g. 1970 or 1999 defaults) are implausible. */
export const EARLIEST_PLAUSIBLE_CAPTURE = '2000-01-01T00:00:00.000Z';

/**
 * Why a capture time is implausible: `after-upload` = later than the gateway received the photo
 * by more than CLOCK_DRIFT_TOLERANCE_MS (a time without a zone counts only when it is later even
 * read in the easternmost zone, UTC+14, its earliest possible instant); `before-2000` = earlier
 * than EARLIEST_PLAUSIBLE_CAPTURE (even read in the westernmost zone, UTC-12).
 */
export const captureTimeProblem = z.object({
  reason: z.enum(['after-upload', 'before-2000']),
  /** What was compared, for a person: the capture time, the upload time, the rule. */
  message: z.string().min(1).max(300),
});
export type CaptureTimeProblem = z.infer<typeof captureTimeProblem>;

export const metadataResult = z.object({
  exif: z
    .object({
      /** The capture instant (with its offset); only when the zone is known. */
      captureTime: isoTime.optional(),
      /** The camera's local capture time and its offset (`unknown` when the photo gives none); whenever the photo has a capture time. */
      captureLocalTime: captureLocalTime.optional(),
      /**
       * The gateway's judgement of the capture time against its own clock (the upload time);
       * given whenever the photo has a capture time (absent from gateways older than it).
       * false: the time is not used for the machine record (record.lastSeenAtSource says which time is).
       */
      captureTimePlausible: z.boolean().optional(),
      /** Why the capture time is implausible; exactly when captureTimePlausible is false. */
      captureTimeProblem: captureTimeProblem.optional(),
      gps: gps.optional(),
      camera: z.object({ make: z.string().max(128).optional(), model: z.string().max(128).optional() }).optional(),
      orientation: z.number().int().min(1).max(8).optional(),
    })
    .refine((e) => (e.captureTimePlausible === false) === (e.captureTimeProblem !== undefined), 'captureTimeProblem is given exactly when captureTimePlausible is false'),
  quality: z.object({
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    megapixels: z.number().nonnegative(),
    sharpness: z.number().nonnegative(),
    brightness: unit,
    contrast: unit,
  }),
  warnings: z.array(qualityWarning).max(10),
  category: z.enum(['overview', 'nameplate', 'other']),
  /**
   * What `category` rests on: `image-and-recognition` (the photo's colours and the recognition
   * result: a finding) or `image` (no recognition result was given, as when the plan runs metadata
   * beside recognition: `overview` is then the assumption for a machine photo, not a finding;
   * agent/src/services/metadata/category.ts). Absent from gateways older than this field.
   */
  categoryBasis: z.enum(['image', 'image-and-recognition']).optional(),
  record: z.object({
    /** The registered machine's id and name (PUT /api/v1/machine on the gateway), when set. */
    machineId: machineId.optional(),
    name: z.string().max(256).optional(),
    type: z.string().max(64).optional(),
    /**
     * Where `type` comes from: `registered` (the technician's registration, the machine's type) or
     * `recognition` (nothing registered; the photo's confident recognition, evidence only).
     * Absent from gateways older than this field.
     */
    typeSource: z.enum(['registered', 'recognition']).optional(),
    brand: z.string().max(128).optional(),
    model: z.string().max(128).optional(),
    serialNumber: z.string().max(128).optional(),
    lastSeenAt: isoTime.optional(),
    /**
     * Which time lastSeenAt is: the photo's capture time (plausible, zone known or assumed);
     * `capture-time-latest`, the latest instant a capture time without a zone can be (its camera
     * time read at UTC-12), for a photo taken more than a day before its upload; or the upload
     * time (no capture time, zone unknown and taken around the upload, or implausible: see
     * exif.captureTimePlausible). Absent from gateways older than this field; relays older than
     * `capture-time-latest` refuse it (docs/messages.md).
     */
    lastSeenAtSource: z.enum(['capture-time', 'capture-time-latest', 'upload-time']).optional(),
    lastPosition: gps.optional(),
    photoQuality: z.enum(['good', 'fair', 'poor']),
    photoCategory: z.enum(['overview', 'nameplate', 'other']),
  }),
  timings: z.record(z.string(), z.number().nonnegative()).optional(),
});
export type MetadataResult = z.infer<typeof metadataResult>;

/**
 * What a nameplate reader found on the photo: the text it read and the record fields it could
 * assign. No service for it ships yet (shared/src/schemas/common.ts `stepName`).
 */
export const nameplateResult = z.object({
  /** The nameplate's text as read, lines joined with newlines; empty when no nameplate was found. */
  text: z.string().max(4000),
  fields: z.object({
    brand: z.string().max(128).optional(),
    model: z.string().max(128).optional(),
    serialNumber: z.string().max(128).optional(),
    year: z.number().int().min(1900).max(2100).optional(),
  }),
  /** The reader's confidence in `fields`, 0–1. */
  confidence: unit,
});
export type NameplateResult = z.infer<typeof nameplateResult>;
