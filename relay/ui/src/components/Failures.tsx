import type { Analysis } from '../graphql';
import { clause, count, reason, when } from '../format';
import { CutShort } from './CutShort';
import type { Failure } from '../state';

/** The newest failed analyses (loaded with the gateways): "none" only when that load answered, "the newest N" when the relay has more. */
export function Failures({ failures, more, at, error }: { failures: Analysis[]; more: boolean; at: number | undefined; error: Failure | undefined }) {
  return (
    <section aria-labelledby="f-h">
      <h2 id="f-h">Failures</h2>
      {error && <p class="bad-text">{at === undefined ? `Not loaded (${clause(error.message)}).` : `As of ${when(at)}: reloading failed (${clause(error.message)}).`}</p>}
      {/* Above the list: on a phone the 20 failures are several screens long. */}
      {more && <p class="muted" data-testid="failures-more">The newest {count(failures.length)} are listed; the relay has older failed analyses, not shown here.</p>}
      <ul>
        {failures.map((a) => (<li key={a.id} class="bad-text"><code>{a.gatewayId}</code> <code>{a.id}</code>{a.endedAt && <> ({when(a.endedAt)})</>}: {reason(a.failure) || 'no reason recorded'}<CutShort a={a} /></li>))}
        {failures.length === 0 && at !== undefined && <li class="muted">No failed analysis{error ? ' as of then' : ''}.</li>}
      </ul>
    </section>
  );
}
