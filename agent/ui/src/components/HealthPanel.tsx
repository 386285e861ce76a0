import { when } from '../format';
import { useHealth } from '../hooks/useHealth';
import { ms, stepLabel } from '../timeline';

/** The gateway's health in detail: broker, services and their instances, model, queue, uplink. */
export function HealthPanel() {
  const { h, err } = useHealth();
  return (
    <section id="health" aria-labelledby="health-h">
      <h2 id="health-h">Gateway health</h2>
      {err && !h && <p class="error">{err}</p>}
      {h && (
        <dl class="health">
          <dt>Gateway</dt>
          <dd>
            {h.gatewayId} · <span class={`badge badge-${h.status === 'ok' ? 'completed' : 'failed'}`}>{h.status}</span> · up {Math.round(h.uptimeS / 60)} min
          </dd>
          <dt>Broker</dt>
          <dd>{h.broker.up ? `up, ${h.broker.clients} clients` : 'DOWN'}</dd>
          {Object.entries(h.services).map(([name, s]) => (
            <>
              <dt key={`${name}-t`}>{stepLabel(s.step)}</dt>
              <dd key={`${name}-d`}>
                {s.up ? 'up' : 'DOWN'} · {name}
                {s.inProcess ? ' (in agent)' : ''}
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
