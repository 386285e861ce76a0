/**
 * Sorts metadata into the machine record's fields.
 * - machineId/name/type/brand/model/serialNumber: from the registered machine; `type` falls back
 *   to the recognised machineType when confident (>= typeConfidenceMin) and nothing is registered;
 *   `typeSource` says which of the two it is.
 * - lastSeenAt: EXIF capture time normalised to UTC when its zone is known
 *   (offset tag or GPS UTC stamp); a zone-less capture time is interpreted with
 *   `assumedUtcOffset` when given; otherwise, or when the capture time is implausible
 *   (after upload + 1 day, or before 2000), the upload time.
 * - lastPosition: EXIF GPS.
 * - photoQuality: good = no warning; fair = one warning other than `blurred`;
 *   poor = `blurred` or two or more warnings.
 */
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
}

export function photoQuality(warnings: readonly QualityWarning[]): PhotoQuality {
  if (warnings.length === 0) return 'good';
  if (warnings.includes('blurred') || warnings.length >= 2) return 'poor';
  return 'fair';
}

const EARLIEST = Date.UTC(2000, 0, 1);

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
  const capturedMs = captured ? Date.parse(captured) : NaN;
  const plausible =
    Number.isFinite(capturedMs) && capturedMs >= EARLIEST &&
    (!Number.isFinite(uploaded) || capturedMs <= uploaded + 86_400_000);
  if (captured && plausible) {
    record.lastSeenAt = captured;
    record.lastSeenAtSource = 'capture-time';
  } else if (Number.isFinite(uploaded)) {
    record.lastSeenAt = new Date(uploaded).toISOString();
    record.lastSeenAtSource = 'upload-time';
  }
  if (exif.gps) record.lastPosition = { ...exif.gps };
  return record;
}
