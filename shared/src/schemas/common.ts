import { z } from 'zod';

export const analysisId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'analysisId: 8-64 URL-safe characters');
export const gatewayId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
export const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'sha256: 64 lowercase hex characters');
/**
 * An ISO 8601 time with a zone, whose instant falls in the years 1970-9999 (UTC). Stores keep
 * times as UTC ISO strings and compare them as text; an offset such as -23:59 on 9999-12-31
 * lands in year 10000, written "+010000-…", which sorts before every other time.
 */
export const isoTime = z.iso.datetime({ offset: true }).refine((t) => {
  // Every message holds several times, validated on each hop: the written year decides without
  // parsing a Date, except in the two years an offset can carry across the bounds.
  const written = Number(t.slice(0, 4));
  if (written > 1970 && written < 9999) return true;
  const y = new Date(t).getUTCFullYear();
  return y >= 1970 && y <= 9999;
}, 'a time between the years 1970 and 9999 (UTC)');
export const machineId = z.string().min(1).max(128);
/**
 * A UTC offset a zone can have: -12:00 to +14:00, minutes 00-59. The one rule for the offsets the
 * gateway applies to a capture time: the configured metadata.assumedUtcOffset
 * (firmware-config/src/schema.ts) and the photo's own (agent/src/services/metadata/exif.ts), where
 * +14:59 or -14:00 is a broken or forged tag that would place the photo hours off. The wire's
 * captureLocalTime (results.ts) keeps its wider pattern, so results of older gateways still parse.
 */
export const UTC_OFFSET_IN_USE = /^(\+(0\d|1[0-3]):[0-5]\d|\+14:00|-(0\d|1[01]):[0-5]\d|-12:00)$/;
export const attempt = z.number().int().min(1).max(100);
/** The longest duration a message carries (a day): no step or analysis runs that long. */
export const MAX_DURATION_MS = 86_400_000;
export const durationMs = z.number().nonnegative().max(MAX_DURATION_MS);

/**
 * The time from one wall-clock reading to another, as a message carries it (0 to a day). The
 * wall clock can be set back or years ahead between the two (NTP after a gateway booted offline;
 * an analysis resumed after a weekend switched off): a raw difference outside the schema made
 * the terminal event unbuildable, and the agent crashed again on every restart as it resumed the
 * same analysis (test/orchestrator.robustness.test.ts). Such a duration is wrong, but bounded.
 */
export function durationBetween(from: number, to: number): number {
  return Math.min(MAX_DURATION_MS, Math.max(0, to - from));
}
export const unit = z.number().min(0).max(1);

/**
 * Every analysis step the catalogue knows (shared/src/catalog.ts `STEPS`). Which of them run, and
 * in what order, is the analysis plan (shared/src/plan.ts). `nameplate` (reading the
 * machine's nameplate) is a contract without a shipped service: it is the worked example of
 * adding a step (docs/orchestrator.md), served by a test handler in test/orchestrator.plan.test.ts.
 */
export const stepName = z.enum(['recognition', 'comparison', 'metadata', 'nameplate']);
export type StepName = z.infer<typeof stepName>;

/** An image lives in the content-addressed blob store; messages carry only its reference. */
export const imageRef = z.object({
  sha256,
  contentType: z.enum(['image/jpeg', 'image/png', 'image/webp']),
  bytes: z.number().int().positive(),
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
  /**
   * A small JPEG thumbnail (base64, at most ~12 KB) for dashboards. Never on the local bus: the
   * gateway keeps it in the blob store next to the photo and puts it in at the edges, the events
   * the uplink sends to the relay and the UI's terminal events (docs/messages.md).
   */
  thumbnail: z.string().max(24_000).optional(),
});
export type ImageRef = z.infer<typeof imageRef>;

/** The longest failure message a message carries; cut with boundedText (shared/src/bus/storable-text.ts). */
export const REASON_MAX = 2000;

/** A failure reason: machine-readable code, a human-actionable message, and whether retrying may help. */
export const failureReason = z.object({
  code: z.string().regex(/^[A-Z][A-Z0-9_]{1,63}$/),
  message: z.string().min(1).max(REASON_MAX),
  retryable: z.boolean(),
});
export type FailureReason = z.infer<typeof failureReason>;

export const gps = z.object({
  latitude: z.number().min(-90).max(90),
  longitude: z.number().min(-180).max(180),
  altitude: z.number().optional(),
});

export const registeredMachine = z.object({
  id: machineId.optional(),
  type: z.string().max(64).optional(),
  brand: z.string().max(128).optional(),
  model: z.string().max(128).optional(),
  serialNumber: z.string().max(128).optional(),
  name: z.string().max(256).optional(),
});
export type RegisteredMachine = z.infer<typeof registeredMachine>;
