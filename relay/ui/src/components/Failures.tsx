import type { Analysis, Machine } from '../graphql';
import { clause, count, reason, when } from '../format';
import { CutShort } from './CutShort';
import type { Failure } from '../state';

/**
 * The newest failed analyses (loaded with the gateways): "none" only when that load answered, "the
 * newest N" when the relay has more. Each says when it failed and of which machine (by its name
 * when the machines table has it), so a failure can be traced to a machine without its id alone.
 */
export function Failures({ failures, more, at, error, machines }: { failures: Analysis[]; more: boolean; at: number | undefined; error: Failure | undefined; machines: Machine[] }) {
  // The registered names of the machines the table has loaded; another machine is named by its id alone.
  const names = new Map(machines.flatMap((m) => (m.name ? [[m.id, m.name] as const] : [])));
  return (
    <section aria-labelledby="f-h">
      <h2 id="f-h">Failures</h2>
      {error && <p class="bad-text">{at === undefined ? `Not loaded (${clause(error.message)}).` : `As of ${when(at)}: reloading failed (${clause(error.message)}).`}</p>}
      {/* Above the list: on a phone the 20 failures are several screens long. */}
      {more && <p class="muted" data-testid="failures-more">The newest {count(failures.length)} are listed; the relay has older failed analyses, not shown here.</p>}
      <ul>
        {failures.map((a) => {
          const name = names.get(a.machineId);
          return (
            <li key={a.id} data-analysis-id={a.id} class="bad-text">
              {a.endedAt ? <>failed <time dateTime={a.endedAt}>{when(a.endedAt)}</time></> : 'failed (time not recorded)'} · machine {name && <>{name} </>}<code>{a.machineId}</code> on gateway <code>{a.gatewayId}</code> · analysis{' '}
              <code>{a.id}</code>: {reason(a.failure) || 'no reason recorded'}
              <CutShort a={a} />
            </li>
          );
        })}
        {failures.length === 0 && at !== undefined && <li class="muted">No failed analysis{error ? ' as of then' : ''}.</li>}
      </ul>
    </section>
  );
}
