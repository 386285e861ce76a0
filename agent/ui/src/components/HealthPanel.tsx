import { duration, when } from '../format';
import { useHealth } from '../hooks/useHealth';
import { ms, stepLabel } from '../timeline';

/** The gateway's health in detail: broker, services and their instances, model, queue, uplink. */
export function HealthPanel() {
  const { h, at, err } = useHealth();
  // After a failed poll the last answer stays, said to be old: a green "ok" from before is not today's state.
  const stale = Boolean(err && h);
  return (
    <section id="health" aria-labelledby="health-h">
      <h2 id="health-h">Gateway health</h2>
      {err && (
        <p class="error" data-testid="health-error">
          <strong>The health check failed:</strong> {err}
          {stale && at !== undefined && (
            <>
              <br />
              Below: the last answer, as of {when(at)}.
            </>
          )}
        </p>
      )}
      {h && (
        <dl class={`health${stale ? ' stale' : ''}`}>
          <dt>Gateway</dt>
          <dd>
            {h.gatewayId} ·{' '}
            <span class={`badge badge-${stale ? 'stale' : h.status === 'ok' ? 'completed' : 'failed'}`} data-testid="health-status">
              {stale && at !== undefined ? `${h.status}, as of ${when(at)}` : h.status}
            </span>{' '}
            · up {duration(h.uptimeS)}
            {/* Why it is degraded, one sentence each: "DEGRADED" alone told the technician nothing to act on. */}
            {h.status !== 'ok' && h.reasons && h.reasons.length > 0 && (
              <ul class="health-reasons" data-testid="health-reasons">
                {h.reasons.map((r) => (
                  <li key={r}>{r}</li>
                ))}
              </ul>
            )}
          </dd>
          <dt>Broker</dt>
          <dd>{h.broker.up ? `up, ${h.broker.clients} clients` : 'DOWN'}</dd>
          {Object.entries(h.services).map(([name, s]) => (
            <>
              <dt key={`${name}-t`}>{stepLabel(s.step)}</dt>
              <dd key={`${name}-d`}>
                {s.up ? 'up' : 'DOWN'} · {name}
                {s.inProcess ? ' (in agent)' : ''}
                {s.optional ? ' · optional step' : ''}
                {s.instances.length > 0 && (
                  <ul>
                    {s.instances.map((i) => (
                      <li key={i.instanceId}>
                        <code>{i.instanceId}</code> · {i.inflight} in flight
                      </li>
                    ))}
                  </ul>
                )}
              </dd>
            </>
          ))}
          <dt>Model</dt>
          <dd>
            {h.model.state === 'loaded' ? `${h.model.id ?? ''} ${h.model.version ?? ''} on ${h.model.backend ?? '?'}${h.model.head ? `, head ${h.model.head.id}` : ', no trained head'}` : h.model.state}
          </dd>
          <dt>Queue</dt>
          <dd>
            {h.orchestrator.running} running, {h.orchestrator.queued} waiting
          </dd>
          <dt>Cloud uplink</dt>
          <dd>
            {h.uplink.state === 'disabled'
              ? `disabled${h.uplink.reason ? ` (${h.uplink.reason})` : ''}`
              : `${h.uplink.state} · ${h.uplink.queueDepth ?? 0} queued${h.uplink.oldestUndeliveredAgeMs ? `, oldest ${ms(h.uplink.oldestUndeliveredAgeMs)}` : ''}${h.uplink.lastDeliveryAt ? ` · last sent ${when(h.uplink.lastDeliveryAt)}` : ''}`}
            {h.uplink.lastError && <p class="error">Last error: {h.uplink.lastError.message}</p>}
          </dd>
        </dl>
      )}
    </section>
  );
}
