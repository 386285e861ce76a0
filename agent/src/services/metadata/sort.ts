/**
 * Sorts metadata into the machine record's fields.
 * - machineId/name/type/brand/model/serialNumber: from the registered machine; `type` falls back
 *   to the recognised machineType when confident (>= typeConfidenceMin) and nothing is registered;
 *   `typeSource` says which of the two it is.
 * - lastSeenAt: EXIF capture time normalised to UTC when its zone is known
 *   (offset tag or GPS UTC stamp); a zone-less capture time is interpreted with
 *   `assumedUtcOffset` when given; a zone-less capture time that is certainly before the upload
 *   (even read at UTC-12) gives its latest possible instant (`capture-time-latest`); otherwise,
 *   or when the capture time is implausible (`judgeCaptureTime`: later than the upload by more
 *   than the clock-drift tolerance, or before 2000), the upload time. `lastSeenAtSource` says which. A forged or wrong future
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
 * The instants a capture time can stand for: one, with a known (or assumed) zone; without one,
 * its wall clock read anywhere from UTC+14 (earliest) to UTC-12 (latest). Null when it has none.
 */
function captureWindow(exif: ExifInfo, assumedUtcOffset?: string): { instant: string | null; earliest: number; latest: number } | null {
  if (!exif.captureTime) return null;
  const instant = captureTimeUtc(exif, assumedUtcOffset);
  if (instant) return { instant, earliest: Date.parse(instant), latest: Date.parse(instant) };
  const wall = Date.parse(`${exif.captureTime.replace(/(Z|[+-]\d{2}:\d{2})$/, '')}Z`);
  return Number.isFinite(wall) ? { instant: null, earliest: wall - 14 * HOUR, latest: wall + 12 * HOUR } : null;
}

/**
 * Judges the capture time against the gateway's clock at receipt (the upload time). With a known
 * (or assumed) zone the instant is compared; a time without a zone can be any instant from its
 * wall clock read at UTC+14 to read at UTC-12, so it is implausible only when all of those are.
 */
export function judgeCaptureTime(exif: ExifInfo, uploadedAt: string, assumedUtcOffset?: string): CaptureTimeCheck | undefined {
  const window = captureWindow(exif, assumedUtcOffset);
  if (!window) return undefined;
  const uploaded = Date.parse(uploadedAt);
  const { instant, earliest, latest } = window;
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
  const window = captureWindow(exif, input.assumedUtcOffset);
  const check = input.captureCheck ?? judgeCaptureTime(exif, input.uploadedAt, input.assumedUtcOffset);
  if (window?.instant && check?.plausible === true) {
    record.lastSeenAt = window.instant;
    record.lastSeenAtSource = 'capture-time';
  } else if (window && check?.plausible === true && Number.isFinite(uploaded) && uploaded > window.latest) {
    // A photo without a zone taken more than a day before its upload (an older photo sent now):
    // the upload time would date its sighting, and its position, to today. The latest instant its
    // camera time allows is true ("seen by then"), at most 26 h after the real one.
    record.lastSeenAt = new Date(window.latest).toISOString();
    record.lastSeenAtSource = 'capture-time-latest';
  } else if (Number.isFinite(uploaded)) {
    record.lastSeenAt = new Date(uploaded).toISOString();
    record.lastSeenAtSource = 'upload-time';
  }
  if (exif.gps) record.lastPosition = { ...exif.gps };
  return record;
}
