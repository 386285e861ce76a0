import type { Machine } from '../graphql';
import { recognitionText, typeName } from '../format';

/** The machine's type: the registered one, or that none is registered (a photo never sets it). */
export function RegisteredType({ m }: { m: Machine }) {
  return m.type ? <>{typeName(m.type)}</> : <span class="muted">not registered</span>;
}

/**
 * What the latest photo was recognised as: evidence, shown as such, and flagged when the gateway
 * found it disagrees with the registered type (its comparison's type check).
 */
export function RecognitionEvidence({ m }: { m: Machine }) {
  const r = m.lastRecognition;
  if (!r) return <span class="muted">—</span>;
  return (
    <span>
      last photo recognised: {recognitionText(r)}
      {m.typeMatch === false && m.type && (
        <>
          {' '}
          <strong class="flag" role="note">⚠ disagrees with the registered type ({typeName(m.type)})</strong>
        </>
      )}
    </span>
  );
}
