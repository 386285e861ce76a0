/** How the dashboard words failures, machine types and recognitions (one place for each). */
import * as z from 'zod/mini';
import { num, percent } from '@tu/shared/internal/display-number';
import { when } from '@tu/shared/internal/display-time';
import { CUT_SHORT_MEANING, endedStepStatus, isStepStatus } from '@tu/shared/internal/step-status';

const str = z.string();
// A failure as it comes: analysis.failed data ({ failedStep, reason }), a step's *.failed data
// ({ error }), or a stored analysis' failure ({ failedStep, code, message }).
const why = z.object({ code: str, message: str });
const failureShape = z.object({ failedStep: z.optional(str), reason: z.optional(why), error: z.optional(why), code: z.optional(str), message: z.optional(str) });

export const reason = (failure: unknown): string => {
  const r = failureShape.safeParse(failure);
  if (!r.success) return '';
  const f = r.data;
  const w = f.reason ?? f.error ?? (f.code && f.message ? { code: f.code, message: f.message } : undefined);
  return w ? `${f.failedStep ? `${f.failedStep}: ` : ''}${w.message} [${w.code}]` : '';
};

/**
 * The steps of an ended analysis that neither completed nor failed, each with its status and what
 * that means (shared/src/step-status.ts): "comparison skipped (it never started: …); metadata
 * cancelled (…)". Gateways older than those two statuses say `running`, `waiting` or `pending` of
 * such a step, read as they would be said now; a status this dashboard does not know is shown as
 * it came. '' for none, and for an analysis still running: the relay records its steps as pending
 * until its end (relay/src/ingest/effects.ts), which would be untrue of the steps under way.
 */
export const cutShortSteps = (status: string, steps: unknown): string => {
  if (status !== 'completed' && status !== 'failed') return '';
  const r = z.array(z.object({ step: str, status: str })).safeParse(steps);
  if (!r.success) return '';
  const cut = r.data.flatMap((s) => {
    if (!isStepStatus(s.status)) return [`${s.step} ${s.status}`];
    const ended = endedStepStatus(s.status);
    return ended === 'completed' || ended === 'failed' ? [] : [`${s.step} ${ended} (${CUT_SHORT_MEANING[ended]})`];
  });
  return cut.join('; ');
};

/** Every time shown goes through one rule, shared with the other UI (shared/src/display-time.ts). */
export { when };

/**
 * Every count and share the dashboard shows, by one rule with the technician UI's
 * (shared/src/display-number.ts): grouped as the viewer's locale writes numbers ("1,234"), and no
 * share short of all shown as "100 %".
 */
export const count = (n: number): string => num(n);
export { percent };

/** A GPS position as people read it: "48.20820° N, 16.37380° E, 171 m altitude" (5 decimals: about 1 m). */
export const positionText = (p: { latitude: number; longitude: number; altitude?: number | undefined }): string =>
  `${Math.abs(p.latitude).toFixed(5)}° ${p.latitude < 0 ? 'S' : 'N'}, ${Math.abs(p.longitude).toFixed(5)}° ${p.longitude < 0 ? 'W' : 'E'}${p.altitude === undefined ? '' : `, ${count(Math.round(p.altitude))} m altitude`}`;

/** A message inside a sentence of ours: without its own closing period ("(The relay answered 502.)."). */
export const clause = (message: string): string => message.replace(/[.\s]+$/, '');

/**
 * How an analysis is named where a technician can match it with their photos: the first 10
 * characters of its id, as the technician UI titles a card without a file name
 * (agent/ui/src/components/AnalysisCard.tsx).
 */
export const shortId = (id: string): string => id.slice(0, 10);

/** A machine type as people write it: `wheel_loader` → "wheel loader". */
export const typeName = (t: string): string => (t === 'negative' ? 'no machine' : t === 'unknown' ? 'unknown (gateway abstained)' : t.replace(/_/g, ' '));

/**
 * A recognition with its meaning: "forklift (71 % confidence)", or that the gateway named no type
 * and why. `unknown` means it abstained; its number is not a type's confidence, so none is shown.
 * Why it abstained is the gateway's own `unknownReason` (shared/src/schemas/results.ts): a guess
 * such as "no machine, or not sure enough" was untrue of a gateway without a machine-type head.
 * Without the reason at hand (Machine.lastRecognition does not carry it) the line says so.
 */
export const recognitionText = (r: { machineType: string; confidence: number; unknownReason?: string | undefined }): string =>
  r.machineType === 'unknown'
    ? `no type named (the gateway abstained${r.unknownReason ? `: ${clause(r.unknownReason)}` : '; its reason is not in the loaded events'})`
    : `${typeName(r.machineType)} (${percent(r.confidence)} confidence)`;

const recognitionOf = z.object({ recognition: z.object({ machineType: str, confidence: z.number(), unknownReason: z.optional(str) }) });

/** The recognition in an analysis' results (feed line, machine history), or ''. */
export const resultsRecognition = (results: unknown): string => {
  const r = recognitionOf.safeParse(results);
  return r.success ? `recognised: ${recognitionText(r.data.recognition)}` : '';
};

/** Why the gateway abstained on an analysis (its results' recognition), if it did and said why. */
export const unknownReasonOf = (results: unknown): string | undefined => {
  const r = recognitionOf.safeParse(results);
  return r.success && r.data.recognition.machineType === 'unknown' ? r.data.recognition.unknownReason : undefined;
};

const labelShape = z.object({ label: str, previousLabel: str, kind: z.enum(['confirmation', 'correction']), by: str });

/**
 * What a technician said of a photo (recognition.labelled, shared/src/schemas/teach.ts), or '':
 * "technician Anna confirmed forklift", "technician Anna corrected forklift to wheel loader". Without it the feed listed a bare event type, and the labels behind the
 * accuracy table could not be told apart from one another.
 */
export const labelText = (data: unknown): string => {
  const l = labelShape.safeParse(data);
  if (!l.success) return '';
  const { label, previousLabel, kind, by } = l.data;
  return kind === 'confirmation' ? `technician ${by} confirmed ${typeName(label)}` : `technician ${by} corrected ${typeName(previousLabel)} to ${typeName(label)}`;
};

/** Long content hashes in reasons cut to their first 10 characters, as the technician UI shows them (agent/ui/src/format.ts). */
const shortHashes = (s: string): string => s.replace(/\b([0-9a-f]{10})[0-9a-f]{54}\b/g, '$1…');

const comparisonShape = z.object({ verdict: z.enum(['match', 'mismatch', 'unknown']), reasons: z.array(str) });
const VERDICT = { match: 'matches the registered machine', mismatch: 'does NOT match the registered machine', unknown: 'cannot tell whether it is the registered machine' } as const;

/**
 * The gateway's comparison of a photo with its registered machine, with the reasons it gives
 * (agent/src/services/comparison/verdict.ts), or ''. Without it a forklift photo on a machine
 * registered as an excavator read as a plain recognition in the machine's history.
 */
export const comparisonText = (comparison: unknown): string => {
  const c = comparisonShape.safeParse(comparison);
  if (!c.success) return '';
  const why = c.data.reasons.map((x) => shortHashes(clause(x))).join('; ');
  return `comparison: ${VERDICT[c.data.verdict]}${why ? ` (${why})` : ''}`;
};

/** The comparison in an analysis' results (machine history), or ''. */
export const resultsComparison = (results: unknown): string => {
  const r = z.object({ comparison: z.unknown() }).safeParse(results);
  return r.success ? comparisonText(r.data.comparison) : '';
};
