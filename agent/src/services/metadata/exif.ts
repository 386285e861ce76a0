/**
 * EXIF reading (capture time, GPS, camera, orientation) with exifr.
 *
 * Time zones: EXIF date tags are camera wall-clock strings with no zone. exifr's
 * "revived" Date objects interpret them in the *process* time zone, which would make
 * the result depend on the gateway's TZ setting. We therefore read the raw strings
 * (`reviveValues: false`) and build the ISO string ourselves:
 *  1. OffsetTimeOriginal / OffsetTimeDigitized / OffsetTime present → ISO with that offset.
 *  2. Else GPSDateStamp + GPSTimeStamp (which are UTC) within ±5 min of a whole
 *     quarter-hour offset from the wall-clock time → ISO with the derived offset.
 *  3. Else ISO *local* time without designator (e.g. `2018-01-26T12:20:28`) and
 *     `captureTimeZone: 'unknown'`; consumers decide (see sort.ts).
 * Missing EXIF gives `{}`; unreadable EXIF gives `{ notes: [...] }`; never throws.
 */
import { UTC_OFFSET_IN_USE } from '@tu/shared';
import exifr from 'exifr';
import type { CaptureTimeZone, ExifInfo, GpsPosition, ImageInput } from './types.js';

const PICK = [
  'DateTimeOriginal', 'CreateDate', 'ModifyDate',
  'OffsetTimeOriginal', 'OffsetTimeDigitized', 'OffsetTime',
  'SubSecTimeOriginal', 'SubSecTimeDigitized', 'SubSecTime',
  'GPSLatitude', 'GPSLatitudeRef', 'GPSLongitude', 'GPSLongitudeRef',
  'GPSAltitude', 'GPSAltitudeRef', 'GPSDateStamp', 'GPSTimeStamp',
  'Make', 'Model', 'Orientation',
];

type RawTags = Record<string, unknown>;

interface WallClock {
  y: number; mo: number; d: number; h: number; mi: number; s: number; ms: number | null;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Parses `YYYY:MM:DD HH:MM:SS` (also `-` separators, optional `T`). Null when invalid. */
export function parseExifDate(value: unknown, subSec?: unknown): WallClock | null {
  if (typeof value !== 'string') return null;
  const m = /^\s*(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(value);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  // Before 1971 is a camera clock reset to 1970-01-01 (no digital photo is that old), and with an
  // offset it falls before 1970 in UTC, which the message format refuses; 9999 likewise after.
  if (y < 1971 || y > 9998 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return null;
  const check = new Date(Date.UTC(y, mo - 1, d));
  if (check.getUTCDate() !== d) return null; // e.g. 2021:02:30
  let ms: number | null = null;
  const sub = typeof subSec === 'number' ? String(subSec) : subSec;
  if (typeof sub === 'string' && /^\d+$/.test(sub.trim())) {
    ms = Math.min(999, Math.round(Number(`0.${sub.trim()}`) * 1000));
  }
  return { y, mo, d, h, mi, s: Math.min(s, 59), ms };
}

function wallClockIso(w: WallClock): string {
  const base = `${pad(w.y, 4)}-${pad(w.mo)}-${pad(w.d)}T${pad(w.h)}:${pad(w.mi)}:${pad(w.s)}`;
  return w.ms === null ? base : `${base}.${pad(w.ms, 3)}`;
}

function wallClockAsUtcMs(w: WallClock): number {
  return Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s);
}

function parseOffset(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const m = /^\s*([+-])(\d{2}):?(\d{2})\s*$/.exec(value);
  if (!m) return null;
  const offset = `${m[1]}${m[2]}:${m[3]}`;
  // Only an offset a zone can have: +14:59 or -14:00 would place the photo hours off, as a known zone.
  return UTC_OFFSET_IN_USE.test(offset) ? offset : null;
}

function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const a = Math.abs(minutes);
  return `${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/** UTC offset (minutes) implied by the GPS UTC stamp, or null if not plausible. */
function offsetFromGps(w: WallClock, tags: RawTags): number | null {
  const date = parseExifDate(
    typeof tags.GPSDateStamp === 'string' ? `${tags.GPSDateStamp} 00:00:00` : undefined,
  );
  const t = tags.GPSTimeStamp;
  if (!date || !Array.isArray(t) || t.length < 3 || !t.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    return null;
  }
  const [h = 0, mi = 0, s = 0] = t as number[];
  // A stamp such as 10:70:00 or 11:00:3600 is a broken writer, not a clock reading: Date.UTC would
  // carry it over into a made-up offset (+00:45, +00:00) and a wrong instant for the machine record.
  if (h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s >= 61) return null;
  const gpsUtc = Date.UTC(date.y, date.mo - 1, date.d) + (h * 3600 + mi * 60 + s) * 1000;
  const diffMin = (wallClockAsUtcMs(w) - gpsUtc) / 60000;
  const rounded = Math.round(diffMin / 15) * 15;
  if (Math.abs(diffMin - rounded) > 5 || !UTC_OFFSET_IN_USE.test(formatOffset(rounded))) return null;
  return rounded;
}

function captureTime(tags: RawTags): Pick<ExifInfo, 'captureTime' | 'captureTimeZone' | 'captureTimeTag'> {
  const candidates = [
    ['DateTimeOriginal', 'SubSecTimeOriginal', 'OffsetTimeOriginal'],
    ['CreateDate', 'SubSecTimeDigitized', 'OffsetTimeDigitized'],
    ['ModifyDate', 'SubSecTime', 'OffsetTime'],
  ] as const;
  for (const [tag, subTag, offTag] of candidates) {
    const w = parseExifDate(tags[tag], tags[subTag]);
    if (!w) continue;
    const iso = wallClockIso(w);
    const offset = parseOffset(tags[offTag]) ?? (tag !== 'ModifyDate' ? parseOffset(tags.OffsetTime) : null);
    let zone: CaptureTimeZone = 'unknown';
    let out = iso;
    if (offset) {
      zone = 'exif-offset';
      out = `${iso}${offset}`;
    } else if (tag !== 'ModifyDate') {
      const gpsOffset = offsetFromGps(w, tags);
      if (gpsOffset !== null) {
        zone = 'gps-utc';
        out = `${iso}${formatOffset(gpsOffset)}`;
      }
    }
    return { captureTime: out, captureTimeZone: zone, captureTimeTag: tag };
  }
  return {};
}

function coordinate(value: unknown, ref: unknown, negativeRef: string): number | null {
  let deg: number | null = null;
  if (typeof value === 'number') deg = value;
  else if (Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    const [d = 0, m = 0, s = 0] = value as number[];
    // Minutes or seconds of 60 or more (10°75′) are a broken writer, not a place: no position.
    if (m < 0 || m >= 60 || s < 0 || s >= 60) return null;
    deg = Math.abs(d) + m / 60 + s / 3600;
    if (d < 0) deg = -deg;
  }
  if (deg === null || !Number.isFinite(deg)) return null;
  if (typeof ref === 'string' && ref.trim().toUpperCase().startsWith(negativeRef)) deg = -Math.abs(deg);
  return deg;
}

function altitudeRef(ref: unknown): number {
  if (typeof ref === 'number') return ref;
  if (ref instanceof Uint8Array && ref.length > 0) return ref[0] ?? 0;
  if (Array.isArray(ref) && typeof ref[0] === 'number') return ref[0];
  return 0;
}

/** Altitudes a photo can be taken at: the deepest sea floor to the edge of space (Kármán line). */
const MIN_ALTITUDE_M = -11_000;
const MAX_ALTITUDE_M = 100_000;

function gps(tags: RawTags, notes: string[]): GpsPosition | undefined {
  const lat = coordinate(tags.GPSLatitude, tags.GPSLatitudeRef, 'S');
  const lon = coordinate(tags.GPSLongitude, tags.GPSLongitudeRef, 'W');
  if (lat === null || lon === null) return undefined;
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) {
    notes.push(`GPS position out of range (${lat}, ${lon}); ignored`);
    return undefined;
  }
  if (lat === 0 && lon === 0) {
    notes.push('GPS position is 0,0 (no fix); ignored');
    return undefined;
  }
  const pos: GpsPosition = { latitude: lat, longitude: lon };
  if (typeof tags.GPSAltitude === 'number' && Number.isFinite(tags.GPSAltitude)) {
    const altitude = altitudeRef(tags.GPSAltitudeRef) === 1 ? -Math.abs(tags.GPSAltitude) : tags.GPSAltitude;
    // GPSAltitude is unsigned: a writer storing -1 m as 4294967295/1 is a broken value, not a height.
    // Anything deeper than the deepest sea or higher than space is dropped; the position stays.
    if (altitude >= MIN_ALTITUDE_M && altitude <= MAX_ALTITUDE_M) pos.altitude = altitude;
    else notes.push(`GPS altitude ${altitude} m is out of range; ignored`);
  }
  return pos;
}

/** Longest camera make or model the message format carries (shared/src/schemas/results.ts). */
const MAX_CAMERA_TEXT = 128;

function cleanString(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  // eslint-disable-next-line no-control-regex
  let s = value.replace(/\u0000/g, '').trim();
  if (s.length > MAX_CAMERA_TEXT) {
    // Cut, not refused: a camera writing a long Make must not fail the analysis. Never half a surrogate pair.
    s = s.slice(0, MAX_CAMERA_TEXT);
    if (/[\ud800-\udbff]$/.test(s)) s = s.slice(0, -1);
    s = s.trimEnd();
  }
  return s.length > 0 ? s : undefined;
}

/** Maps raw exifr tags (translateValues/reviveValues off) to ExifInfo. Pure; exported for tests. */
export function exifFromTags(tags: RawTags): ExifInfo {
  const notes: string[] = [];
  const out: ExifInfo = { ...captureTime(tags) };
  const original = typeof tags.DateTimeOriginal === 'string' ? /^\s*(\d{4})[:-]/.exec(tags.DateTimeOriginal) : null;
  if (original && (Number(original[1]) < 1971 || Number(original[1]) > 9998)) notes.push(`capture time ${tags.DateTimeOriginal as string} is out of range (a camera clock reset?); ignored`);
  const pos = gps(tags, notes);
  if (pos) out.gps = pos;
  const make = cleanString(tags.Make);
  const model = cleanString(tags.Model);
  if (make || model) out.camera = { ...(make ? { make } : {}), ...(model ? { model } : {}) };
  if (tags.Orientation !== undefined) {
    const o = tags.Orientation;
    if (typeof o === 'number' && Number.isInteger(o) && o >= 1 && o <= 8) out.orientation = o;
    else notes.push(`invalid EXIF orientation ${String(o)}; ignored`);
  }
  if (notes.length > 0) out.notes = notes;
  return out;
}

/** Reads EXIF from a path or buffer. Never throws: errors become `notes`. */
export async function readExif(input: ImageInput): Promise<ExifInfo> {
  let tags: RawTags | undefined;
  try {
    tags = (await exifr.parse(input, {
      tiff: true, exif: true, gps: true, ifd1: false, interop: false,
      xmp: false, icc: false, iptc: false, jfif: false, ihdr: false,
      translateKeys: true, translateValues: false, reviveValues: false,
      sanitize: true, mergeOutput: true, pick: PICK,
    })) as RawTags | undefined;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (/unknown file format/i.test(msg)) return { notes: ['no EXIF: container format not supported by the EXIF reader'] };
    return { notes: [`EXIF unreadable: ${msg}`] };
  }
  if (!tags || typeof tags !== 'object') return {};
  try {
    const info = exifFromTags(tags);
    const errors = (tags as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      info.notes = [...(info.notes ?? []), ...errors.map((e) => `EXIF partly unreadable: ${e instanceof Error ? e.message : String(e)}`)];
    }
    return info;
  } catch (err) {
    return { notes: [`EXIF unreadable: ${err instanceof Error ? err.message : String(err)}`] };
  }
}
