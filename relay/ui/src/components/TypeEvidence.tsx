import type { Machine } from '../graphql';
import { recognitionText, shortId, typeName, when } from '../format';
import type { Photos } from '../photos';

/** The machine's type: the registered one, or that none is registered (a photo never sets it). */
export function RegisteredType({ m }: { m: Machine }) {
  return m.type ? <>{typeName(m.type)}</> : <span class="muted">not registered</span>;
}

/**
 * What the last recognised photo was recognised as: evidence, shown as such, and flagged when the
 * gateway found it disagrees with the registered type (its comparison's type check). It is the
 * newest photo with a recognition, not necessarily the newest photo (a later one may have failed),
 * so it names its analysis and, when the dashboard has it, its time and file name.
 */
export function RecognitionEvidence({ m, photos }: { m: Machine; photos: Photos }) {
  const r = m.lastRecognition;
  if (!r) return <span class="muted">—</span>;
  const p = photos.get(r.analysisId);
  return (
    <span data-testid="last-recognised">
      {recognitionText({ ...r, unknownReason: p?.unknownReason })}
      {m.typeMatch === false && m.type && (
        <>
          {' '}
          <strong class="flag" role="note">⚠ disagrees with the registered type ({typeName(m.type)})</strong>
        </>
      )}
      <br />
      <span class="muted">
        analysis <code>{shortId(r.analysisId)}</code>
        {p?.startedAt ? <>, started <time dateTime={p.startedAt}>{when(p.startedAt)}</time></> : ' (its time is not in the loaded events)'}
        {p?.fileName && <> · <code>{p.fileName}</code></>}
      </span>
    </span>
  );
}
