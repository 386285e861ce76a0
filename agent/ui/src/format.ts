import type { Results } from './schemas';
import { num, percent } from '@tu/shared/internal/display-number';
import { when } from '@tu/shared/internal/display-time';

/** Display helpers for the result card and the history: every number says what it is. */
export const pretty = (s: string): string => s.replace(/_/g, ' ');

/**
 * Every number the UI prints goes through num and pct, one rule with the dashboard's
 * (shared/src/display-number.ts): the browser's digit grouping and decimal mark ("100,000 events",
 * "1.5 MB"), and no share short of all shown as "100 %".
 */
export { num, percent as pct };

/**
 * A duration in its largest units ("3 d 4 h", "2 h 5 min", "7 min", "42 s"): "4320 min" made a
 * reader count, and "0 min" said nothing of 42 seconds.
 */
export function duration(seconds: number): string {
  if (seconds < 60) return `${num(Math.max(0, Math.floor(seconds)))} s`;
  const m = Math.floor(seconds / 60);
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  if (d > 0) return `${num(d)} d ${h % 24} h`;
  if (h > 0) return `${h} h ${m % 60} min`;
  return `${m} min`;
}
/**
 * A step's or an analysis's time: milliseconds below a second, seconds with a tenth below a
 * minute, then duration()'s units (a wait of 20 minutes read "1234.5 s").
 */
export const ms = (n: number): string => (n < 1000 ? `${num(Math.round(n))} ms` : n < 60_000 ? `${num(n / 1000, 1)} s` : duration(n / 1000));
/** A size in the unit a person reads (KB are 1024 bytes): the timeline's "Photo stored", the health panel's storage and outbox. */
export function bytes(n: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  for (; v >= 1024 && i < units.length - 1; i++) v /= 1024;
  return i === 0 ? `${num(n)} bytes` : `${v < 10 ? num(v, 1) : num(Math.round(v))} ${units[i]}`;
}
/** "1 event", "3 events": a count with its noun. */
export const count = (n: number, one: string, many = `${one}s`): string => `${num(n)} ${n === 1 ? one : many}`;
/** Every time shown goes through one rule, shared with the other UI (shared/src/display-time.ts). */
export { when };

type Exif = NonNullable<Results['metadata']>['exif'];

/**
 * The capture time as the camera recorded it: its local wall-clock time, and the zone when
 * the photo tells it (shared/src/schemas/results.ts captureLocalTime). A time without a zone
 * is shown as such, never converted as if it were this device's time.
 */
export function captureText(exif: Exif): string {
  const local = exif.captureLocalTime;
  if (local) {
    const shown = local.time.slice(0, 16).replace('T', ' ');
    if (local.offset === 'unknown') return `${shown} (camera local time, zone unknown)`;
    const from = local.offsetFrom === 'gps-utc' ? 'from the GPS clock' : 'from the photo';
    return `${shown} (camera local time, UTC${local.offset} ${from})`;
  }
  // An analysis stored before captureLocalTime existed: only the instant.
  if (exif.captureTime) return `${when(exif.captureTime)} (converted to this device's time zone)`;
  return 'no capture time in the photo';
}

/** "Canon" + "Canon EOS 600D" → "Canon EOS 600D": many cameras repeat the make in the model. */
export function cameraText(camera: Exif['camera']): string {
  const make = camera?.make?.trim() ?? '';
  const model = camera?.model?.trim() ?? '';
  if (make && model.toLowerCase().startsWith(make.toLowerCase())) return model;
  return [make, model].filter(Boolean).join(' ');
}

/** Long content hashes in reasons are cut to their first 10 characters (enough to tell photos apart). */
export const shortHashes = (s: string): string => s.replace(/\b([0-9a-f]{10})[0-9a-f]{54}\b/g, '$1…');

/** The type of an analysis in a list: what was recognised, or that it was not. */
export const typeText = (machineType: string | undefined): string =>
  machineType === undefined ? 'type not yet known' : machineType === 'unknown' ? 'type unknown' : pretty(machineType);

export const STATUS_TEXT: Record<string, string> = { stored: 'Waiting', running: 'Running', completed: 'Completed', failed: 'Failed' };
