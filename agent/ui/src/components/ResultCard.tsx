import { endedStepStatus, isStepStatus } from '@tu/shared/internal/step-status';
import { cameraText, captureText, num, pct, pretty, shortHashes, when } from '../format';
import type { Results } from '../schemas';
import type { Analysis } from '../timeline';
import { Teach } from './Teach';

type Recognition = NonNullable<Results['recognition']>;
type Comparison = NonNullable<Results['comparison']>;
type Metadata = NonNullable<Results['metadata']>;

/**
 * The machine type. A percentage is shown only next to a named type: next to "unknown" it would
 * read as certainty about a type (the wire's confidence for `unknown` is not a type's
 * confidence). For `unknown` the reason says why, and the closest types are called guesses.
 */
function MachineType({ rec }: { rec: Recognition }) {
  const unknown = rec.machineType === 'unknown';
  // A type the reason already names with its probability (head.ts: "best type X p=0.45 < ...") is not listed again.
  const others = rec.topK.filter((t) => t.label !== rec.machineType && !rec.unknownReason?.includes(t.label)).slice(0, 3);
  return (
    <>
      <strong>{pretty(rec.machineType)}</strong>
      {!unknown && <> · {pct(rec.confidence)} confidence</>}
      {rec.unknownReason && <span class="muted"> ({rec.unknownReason})</span>}
      {others.length > 0 && (
        <span class="muted">
          {' '}
          · {unknown ? 'other guesses, each below the bar to name a type' : 'other types'}: {others.map((t) => `${pretty(t.label)} ${pct(t.score)}`).join(', ')}
        </span>
      )}
    </>
  );
}

/**
 * The comparison's verdict and its reasons (agent/src/services/comparison/verdict.ts), each fact
 * once: the reasons already state the type check, the near-duplicate and the similarity with its
 * threshold whenever the similarity counted. It is added only when the type decided alone.
 */
function ComparisonView({ cmp }: { cmp: Comparison }) {
  const best = cmp.bestMatch;
  return (
    <>
      {/* "Cannot tell the registered machine" read as if the machine could not be told anything. */}
      <span class={`verdict verdict-${cmp.verdict}`}>{cmp.verdict === 'match' ? 'Matches' : cmp.verdict === 'mismatch' ? 'Does NOT match' : 'Cannot tell'}</span>
      {cmp.verdict === 'unknown' ? ' whether it is the registered machine' : ' the registered machine'}
      <ul class="scores">
        {cmp.reasons.map((x) => (
          <li key={x}>{shortHashes(x)}</li>
        ))}
        {best && cmp.typeCheck.match === false && (
          <li>
            similarity to the closest {best.source === 'reference' ? 'reference' : 'earlier'} photo: {num(best.similarity, 2)} (1 = same view)
          </li>
        )}
      </ul>
    </>
  );
}

/**
 * Which time the machine record's sighting takes when the photo's own time is plausible but has
 * no zone (agent/src/services/metadata/sort.ts): the upload time; for a photo taken more than a
 * day before its upload, the latest moment its camera time can be; or the capture time read in the
 * zone the gateway is configured to assume for camera clocks (metadata.assumedUtcOffset).
 * Undefined when nothing needs saying.
 */
function recordTimeText(meta: Metadata): string | undefined {
  const local = meta.exif.captureLocalTime;
  const { lastSeenAtSource: source, lastSeenAt } = meta.record;
  if (!local || local.offset !== 'unknown' || !source) return undefined;
  if (source === 'upload-time') return 'The photo gives no zone for this time: the machine record uses the upload time instead.';
  if (source === 'capture-time-latest') {
    return `The photo gives no zone for this time and was taken more than a day before its upload: the machine record dates the sighting at the latest moment it can have been taken${lastSeenAt ? `, ${when(lastSeenAt)}` : ''}.`;
  }
  return 'The machine record reads this time in the zone the gateway assumes for camera clocks.';
}

function MetadataView({ meta }: { meta: Metadata }) {
  const gps = meta.exif.gps;
  const recordTime = meta.exif.captureTimePlausible !== false ? recordTimeText(meta) : undefined;
  return (
    <>
      <dt>Captured</dt>
      <dd data-testid="capture-time">
        {captureText(meta.exif)}
        {/* The gateway refused this time for the machine record (agent/src/services/metadata/sort.ts judgeCaptureTime). */}
        {meta.exif.captureTimePlausible === false && (
          <span class="warn" data-testid="capture-time-implausible"><br />Not plausible: {meta.exif.captureTimeProblem?.message ?? 'rejected by the gateway'}. The machine record uses the upload time instead.</span>
        )}
        {/* A plausible time the record still does not use, or reads in a zone the photo does not give (agent/src/services/metadata/sort.ts). */}
        {recordTime && (
          <span class="muted" data-testid="capture-time-record"><br />{recordTime}</span>
        )}
      </dd>
      <dt>Position</dt>
      <dd data-testid="position">
        {gps ? (
          <>
            {/* Coordinates keep the dot-decimal form maps and GPS devices use (not the browser's number format: "43,46745, 11,88513" would be ambiguous). */}
            <a href={`https://www.openstreetmap.org/?mlat=${gps.latitude}&mlon=${gps.longitude}#map=17/${gps.latitude}/${gps.longitude}`} target="_blank" rel="noopener noreferrer">
              {gps.latitude.toFixed(5)}, {gps.longitude.toFixed(5)} (map)
            </a>
            {/* The photo's GPS altitude (shared/src/schemas/results.ts gps.altitude), when it has one. */}
            {gps.altitude !== undefined && `, ${num(Math.round(gps.altitude))} m above sea level`}
          </>
        ) : (
          'no GPS in the photo'
        )}
      </dd>
      <dt>Camera</dt>
      <dd data-testid="camera">{cameraText(meta.exif.camera) || 'not in the photo'}</dd>
      <dt>Photo</dt>
      <dd>
        {num(meta.quality.width)} × {num(meta.quality.height)} pixels ({num(meta.quality.megapixels, 1)} MP), category {meta.category}
        {meta.categoryBasis === 'image' ? ' (assumed: decided without the recognition result)' : ''}, quality {meta.record.photoQuality}
      </dd>
      {meta.warnings.length > 0 && (
        <>
          <dt>Warnings</dt>
          <dd class="warn">{meta.warnings.map(pretty).join(', ')}</dd>
        </>
      )}
    </>
  );
}

/**
 * Why a finished analysis has no machine type: "not recognised" would say recognition ran and
 * found nothing, which is untrue of a recognition that failed or was stopped by another step's failure.
 */
function noTypeText(a: Analysis): string {
  const st = a.steps?.find((s) => s.step === 'recognition');
  if (!a.steps) return 'not determined';
  if (!st) return 'not determined (recognition is not in this analysis\'s plan)';
  if (st.status === 'failed') return `not determined (recognition failed${st.error ? `: ${st.error.message}` : ''})`;
  if (st.status === 'completed') return 'not determined (recognition finished without a result)';
  // Cut short by the end of the analysis (shared/src/step-status.ts; older gateways say running or pending).
  if (isStepStatus(st.status) && endedStepStatus(st.status) === 'skipped') return 'not determined (recognition was skipped: it never started)';
  return 'not determined (recognition was cancelled before it finished)';
}

/** The result of a finished analysis. Step durations are on the timeline (one per step, with what it measures). */
export function ResultCard({ a }: { a: Analysis }) {
  const r: Results = a.results ?? {};
  const rec = r.recognition;
  return (
    <section class="result" aria-label="Result">
      {a.image?.thumbnail && <img class="thumb" src={`data:image/jpeg;base64,${a.image.thumbnail}`} alt="Thumbnail of the analysed photo" width={160} />}
      <dl>
        <dt>Machine type</dt>
        <dd class="machine-type" data-testid="machine-type">
          {rec ? <MachineType rec={rec} /> : noTypeText(a)}
        </dd>
        {r.comparison && (
          <>
            <dt>Comparison</dt>
            <dd data-testid="comparison">
              <ComparisonView cmp={r.comparison} />
            </dd>
          </>
        )}
        {r.metadata && <MetadataView meta={r.metadata} />}
      </dl>
      {rec && <Teach analysisId={a.id} recognised={rec.machineType} />}
    </section>
  );
}
