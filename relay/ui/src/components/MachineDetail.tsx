import type { Analysis, Machine } from '../graphql';
import { clause, count, reason, resultsComparison, resultsRecognition, shortId, when } from '../format';
import { CutShort } from './CutShort';
import type { Photos } from '../photos';
import type { Failure } from '../state';
import { LastPosition } from './LastPosition';
import { LastSeen, machineLabel } from './Machines';
import { RecognitionEvidence, RegisteredType } from './TypeEvidence';

/** Start time in ms; an analysis without one sorts last (it has no time to show). */
const startMs = (a: Analysis): number => {
  const t = a.startedAt ? Date.parse(a.startedAt) : NaN;
  return Number.isFinite(t) ? t : -Infinity;
};

/** Green only for a completed analysis: one still running is not yet a result (grey, as `unknown` in main.tsx). */
const BADGE: Record<string, string> = { completed: 'ok', failed: 'bad' };

/**
 * One machine: its registered facts, the last recognised photo, and its analyses newest first by
 * the time each line shows (the relay pages them in its own order, which can differ from the
 * start times), each named by its id prefix and file name so a technician's photo can be found,
 * with what the gateway made of it: its recognition and its comparison with the registered machine.
 */
export function MachineDetail({ m, analyses, more, at, error, photos }: { m: Machine; analyses: Analysis[]; more: boolean; at: number; error: Failure | undefined; photos: Photos }) {
  const label = machineLabel(m);
  const sorted = [...analyses].sort((a, b) => startMs(b) - startMs(a));
  return (
    <article class="card" aria-label={`Machine ${label}`}>
      <h3>{label}</h3>
      {error && <p class="bad-text">As of {when(at)}: reloading this machine failed ({clause(error.message)}).</p>}
      {m.latestThumbnail && <img src={`data:image/jpeg;base64,${m.latestThumbnail}`} alt="Latest photo" width={200} />}
      <dl class="facts">
        {m.registeredId && <><dt>Registered id</dt><dd><code>{m.registeredId}</code></dd></>}
        <dt>Registered type</dt><dd><RegisteredType m={m} /></dd>
        <dt>Last recognised photo</dt><dd><RecognitionEvidence m={m} photos={photos} /></dd>
        <dt>Last seen</dt><dd data-testid="detail-last-seen"><LastSeen m={m} /></dd>
        <dt>Last known position</dt><dd><LastPosition m={m} sorted={sorted} /></dd>
        <dt>Gateway</dt><dd><code>{m.gatewayId}</code> (machine <code>{m.id}</code>)</dd>
      </dl>
      <h4>Analyses, newest start first</h4>
      {/* The relay pages them: a full page is not the machine's whole history. */}
      {more && <p class="muted" data-testid="machine-analyses-more">The newest {count(analyses.length)} are listed; the relay has older analyses of this machine, not shown here.</p>}
      <ul data-testid="machine-analyses">
        {sorted.map((a) => {
          const file = photos.get(a.id)?.fileName;
          return (
            <li key={a.id} data-analysis-id={a.id}>
              <span class={`badge ${BADGE[a.status] ?? 'unknown'}`}>{a.status}</span>{' '}
              {a.startedAt ? <>started <time dateTime={a.startedAt}>{when(a.startedAt)}</time></> : 'start time not recorded'} · <code>{shortId(a.id)}</code>
              {file && <> <code>{file}</code></>} {resultsRecognition(a.results)}
              {resultsComparison(a.results) && <span data-testid="comparison"> · {resultsComparison(a.results)}</span>} {reason(a.failure)}
              <CutShort a={a} />
            </li>
          );
        })}
        {analyses.length === 0 && <li class="muted">No analysis stored for this machine.</li>}
      </ul>
    </article>
  );
}
