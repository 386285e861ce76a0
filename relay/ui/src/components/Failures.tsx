import type { Analysis } from '../graphql';
import { reason } from '../format';

export function Failures({ failures }: { failures: Analysis[] }) {
  return (
    <section aria-labelledby="f-h">
      <h2 id="f-h">Failures</h2>
      <ul>
        {failures.map((a) => (<li key={a.id} class="bad-text"><code>{a.gatewayId}</code> <code>{a.id}</code>: {reason(a.failure) || 'no reason recorded'}</li>))}
        {failures.length === 0 && <li class="muted">No failed analysis.</li>}
      </ul>
    </section>
  );
}
