import type { Analysis } from '../graphql';
import { clause, reason, when } from '../format';
import { CutShort } from './CutShort';
import type { Failure } from '../state';

/** The newest failed analyses (loaded with the gateways): "none" only when that load answered. */
export function Failures({ failures, at, error }: { failures: Analysis[]; at: number | undefined; error: Failure | undefined }) {
  return (
    <section aria-labelledby="f-h">
      <h2 id="f-h">Failures</h2>
      {error && <p class="bad-text">{at === undefined ? `Not loaded (${clause(error.message)}).` : `As of ${when(at)}: reloading failed (${clause(error.message)}).`}</p>}
      <ul>
        {failures.map((a) => (<li key={a.id} class="bad-text"><code>{a.gatewayId}</code> <code>{a.id}</code>{a.endedAt && <> ({when(a.endedAt)})</>}: {reason(a.failure) || 'no reason recorded'}<CutShort a={a} /></li>))}
        {failures.length === 0 && at !== undefined && <li class="muted">No failed analysis{error ? ' as of then' : ''}.</li>}
      </ul>
    </section>
  );
}
