/**
 * Sorts metadata into the machine record's fields.
 * - machineId/name/type/brand/model/serialNumber: from the registered machine; `type` falls back
 *   to the recognised machineType when confident (>= typeConfidenceMin) and nothing is registered;
 *   `typeSource` says which of the two it is.
 * - lastSeenAt: EXIF capture time normalised to UTC when its zone is known
 *   (offset tag or GPS UTC stamp); a zone-less capture time is interpreted with
 *   `assumedUtcOffset` when given; otherwise, or when the capture time is implausible
 *   (`judgeCaptureTime`: later than the upload by more than the clock-drift tolerance, or
 *   before 2000), the upload time. `lastSeenAtSource` says which. A forged or wrong future
 *   capture time must not order the machine's sightings: it would outrank every real photo
 *   until that time (issue 8 finding 10).
 * - lastPosition: EXIF GPS (ordered by lastSeenAt like the rest of the sighting).
 * - photoQuality: good = no warning; fair = one warning other than `blurred`;
 *   poor = `blurred` or two or more warnings.
 */
import { CLOCK_DRIFT_TOLERANCE_MS, EARLIEST_PLAUSIBLE_CAPTURE, type CaptureTimeProblem } from '@tu/shared';
import type {
  ExifInfo, MachineRecordFields, PhotoCategory, PhotoQuality, QualityWarning, RecognitionHint, RegisteredMachine,
} from './types.js';

export interface SortInput {
  exif: ExifInfo;
  warnings: readonly QualityWarning[];
  category: PhotoCategory;
  uploadedAt: string;
  recognition?: RecognitionHint;
  registered?: RegisteredMachine;
  /** e.g. '+01:00': the zone camera clocks are assumed to be set to when EXIF has none. */
  assumedUtcOffset?: string;
  typeConfidenceMin?: number;
  /** judgeCaptureTime's verdict (computed from exif/uploadedAt when not given). */
  captureCheck?: CaptureTimeCheck;
}

/** The gateway's judgement of a photo's capture time; absent when the photo has none. */
export type CaptureTimeCheck = { plausible: true } | { plausible: false; problem: CaptureTimeProblem };

export function photoQuality(warnings: readonly QualityWarning[]): PhotoQuality {
  if (warnings.length === 0) return 'good';
  if (warnings.includes('blurred') || warnings.length >= 2) return 'poor';
  return 'fair';
}

const EARLIEST = Date.parse(EARLIEST_PLAUSIBLE_CAPTURE);
const HOUR = 3_600_000;

/** Capture time as a UTC ISO string, or null when it cannot be placed in time. */
export function captureTimeUtc(exif: ExifInfo, assumedUtcOffset?: string): string | null {
  if (!exif.captureTime) return null;
  let iso = exif.captureTime;
  if (exif.captureTimeZone === 'unknown' || !/(Z|[+-]\d{2}:\d{2})$/.test(iso)) {
    if (!assumedUtcOffset || !/^(Z|[+-]\d{2}:\d{2})$/.test(assumedUtcOffset)) return null;
    iso = `${iso}${assumedUtcOffset}`;
  }
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/**
 * Judges the capture time against the gateway's clock at receipt (the upload time). With a known
 * (or assumed) zone the instant is compared; a time without a zone can be any instant from its
 * wall clock read at UTC+14 to read at UTC-12, so it is implausible only when all of those are.
 */
export function judgeCaptureTime(exif: ExifInfo, uploadedAt: string, assumedUtcOffset?: string): CaptureTimeCheck | undefined {
  if (!exif.captureTime) return undefined;
  const uploaded = Date.parse(uploadedAt);
  const instant = captureTimeUtc(exif, assumedUtcOffset);
  let earliest: number;
  let latest: number;
  if (instant) {
    earliest = latest = Date.parse(instant);
  } else {
    const wall = Date.parse(`${exif.captureTime.replace(/(Z|[+-]\d{2}:\d{2})$/, '')}Z`);
    if (!Number.isFinite(wall)) return undefined;
    earliest = wall - 14 * HOUR;
    latest = wall + 12 * HOUR;
  }
  const shown = instant ?? `${exif.captureTime} (camera local time, zone unknown)`;
  if (Number.isFinite(uploaded) && earliest > uploaded + CLOCK_DRIFT_TOLERANCE_MS) {
    const ahead = Math.round((earliest - uploaded) / 60_000);
    return {
      plausible: false,
      problem: {
        reason: 'after-upload',
        message: `capture time ${shown} is ${ahead >= 120 ? `${Math.round(ahead / 60)} h` : `${ahead} min`} after the gateway received the photo (${new Date(uploaded).toISOString()}); more than ${CLOCK_DRIFT_TOLERANCE_MS / 60_000} min of clock drift is implausible`,
      },
    };
  }
  if (latest < EARLIEST) {
    return { plausible: false, problem: { reason: 'before-2000', message: `capture time ${shown} is before 2000: the camera clock was probably never set` } };
  }
  return { plausible: true };
}

export function sortIntoRecord(input: SortInput): MachineRecordFields {
  const { exif, registered, recognition } = input;
  const record: MachineRecordFields = {
    photoQuality: photoQuality(input.warnings),
    photoCategory: input.category,
  };
  const typeMin = input.typeConfidenceMin ?? 0.5;
  if (registered?.id) record.machineId = registered.id;
  if (registered?.name) record.name = registered.name;
  // typeSource tells the relay whether `type` is the machine's (registered) or only evidence.
  if (registered?.type) {
    record.type = registered.type;
    record.typeSource = 'registered';
  } else if (recognition && recognition.machineType !== 'unknown' && (recognition.confidence ?? 0) >= typeMin) {
    record.type = recognition.machineType;
    record.typeSource = 'recognition';
  }
  if (registered?.brand) record.brand = registered.brand;
  if (registered?.model) record.model = registered.model;
  if (registered?.serialNumber) record.serialNumber = registered.serialNumber;

  const uploaded = Date.parse(input.uploadedAt);
  const captured = captureTimeUtc(exif, input.assumedUtcOffset);
  const check = input.captureCheck ?? judgeCaptureTime(exif, input.uploadedAt, input.assumedUtcOffset);
  if (captured && check?.plausible === true) {
    record.lastSeenAt = captured;
    record.lastSeenAtSource = 'capture-time';
  } else if (Number.isFinite(uploaded)) {
    record.lastSeenAt = new Date(uploaded).toISOString();
    record.lastSeenAtSource = 'upload-time';
  }
  if (exif.gps) record.lastPosition = { ...exif.gps };
  return record;
}
