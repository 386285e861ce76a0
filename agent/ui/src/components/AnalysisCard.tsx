import { useEffect, useRef } from 'preact/hooks';
import { pct, STATUS_TEXT, when } from '../format';
import { stepLabel, type Analysis } from '../timeline';
import { ResultCard } from './ResultCard';

/** A photo this page uploaded, from the file input to the gateway's answer. */
export interface Upload {
  key: number;
  name: string;
  progress: number;
  analysisId?: string;
  error?: { code: string; message: string };
  /** The photo did not reach the gateway, or the gateway was busy: the same file can be sent again. */
  canRetry?: boolean;
}

/** Loading an analysis from the gateway (opened from the history, or reloaded after a reconnect). */
export interface Load {
  loading?: boolean;
  /** Why the last load failed; kept on the card (with a Retry) until a load succeeds. */
  error?: { code: string; message: string };
  /** The file name the history listed, so a card that could not load still says which photo it is. */
  fileName?: string;
}

const finished = (a: Analysis | undefined) => a?.status === 'completed' || a?.status === 'failed';

/**
 * One analysis: upload progress, live timeline, result. `reveal` (the newest upload) scrolls
 * the card to the top of the screen when the upload starts and again when the gateway has
 * answered, so on a phone the result is in view without scrolling past the capture box.
 */
export function AnalysisCard({
  upload,
  analysis,
  id,
  load,
  onRetry,
  onSendAgain,
  reveal = false,
}: {
  upload?: Upload;
  analysis?: Analysis | undefined;
  id?: string;
  load?: Load | undefined;
  onRetry?: () => void;
  onSendAgain?: () => void;
  reveal?: boolean;
}) {
  const aid = upload?.analysisId ?? id ?? '';
  // Without an analysis, "Waiting" is true only of a photo this page has just uploaded; one opened from the history is loading, or could not be loaded.
  // "Rejected" only when the gateway refused the photo; a photo that never arrived (or met a busy gateway) was not sent.
  const state = upload?.error
    ? upload.canRetry
      ? 'unsent'
      : 'rejected'
    : analysis
      ? analysis.status
      : upload && !upload.analysisId
        ? 'uploading'
        : load?.error
          ? 'unavailable'
          : load?.loading && !upload
            ? 'loading'
            : 'stored';
  const label = state === 'rejected' ? 'Rejected' : state === 'unsent' ? 'Not sent' : state === 'uploading' ? 'Uploading' : state === 'unavailable' ? 'Not loaded' : state === 'loading' ? 'Loading' : (STATUS_TEXT[state] ?? state);
  const name = upload?.name ?? analysis?.fileName ?? load?.fileName;
  const ref = useRef<HTMLElement>(null);
  const answered = Boolean(upload?.error) || finished(analysis);
  useEffect(() => {
    if (reveal) ref.current?.scrollIntoView({ block: 'start' });
  }, [reveal, answered]);
  return (
    <article ref={ref} class={`card state-${state}`} id={aid ? `a-${aid}` : undefined} tabIndex={-1} aria-label={`Analysis ${name ?? aid}: ${label}`}>
      <header class="card-h">
        <h3>{name ?? `Analysis ${aid.slice(0, 10)}`}</h3>
        <span class={`badge badge-${state}`}>{label}</span>
      </header>
      {upload && !upload.analysisId && !upload.error && (
        <div>
          <label class="muted">
            Upload {pct(upload.progress)}
            <progress max={1} value={upload.progress} aria-label={`Upload progress of ${upload.name}`} />
          </label>
        </div>
      )}
      {upload?.error && (
        <p class="error" role="alert">
          <strong>{upload.canRetry ? 'Not sent:' : 'Not accepted:'}</strong> {upload.error.message} <code>{upload.error.code}</code>{' '}
          {upload.canRetry && onSendAgain && (
            <button type="button" class="small-button" onClick={onSendAgain}>
              Send again
            </button>
          )}
        </p>
      )}
      {aid && (
        <ol class="timeline" aria-live="polite" aria-label="Timeline">
          {analysis?.items.map((i) => (
            <li key={i.key} class={`t-${i.kind}`}>
              {i.time && (
                <>
                  <time dateTime={i.time}>{when(i.time)}</time>{' '}
                </>
              )}
              <span>{i.text}</span>
            </li>
          ))}
          {(!analysis || analysis.items.length === 0) && state === 'stored' && <li class="t-info">Accepted; waiting for the analysis to start…</li>}
          {state === 'loading' && <li class="t-info">Loading the analysis from the gateway…</li>}
        </ol>
      )}
      {load?.error && (
        <p class="error" role="alert">
          <strong>{analysis ? 'Could not reload this analysis (showing what was loaded before):' : 'Could not load this analysis:'}</strong> {load.error.message} <code>{load.error.code}</code>{' '}
          {onRetry && (
            <button type="button" class="small-button" onClick={onRetry} disabled={load.loading}>
              {load.loading ? 'Retrying…' : 'Retry'}
            </button>
          )}
        </p>
      )}
      {analysis?.status === 'failed' && analysis.failure && (
        <p class="error" role="alert">
          <strong>Analysis failed at {stepLabel(analysis.failure.step)}:</strong> {analysis.failure.reason.message} <code>{analysis.failure.reason.code}</code>
          {analysis.failure.reason.retryable ? ' Trying again with a new photo may help.' : ''}
        </p>
      )}
      {analysis && finished(analysis) && <ResultCard a={analysis} />}
    </article>
  );
}
