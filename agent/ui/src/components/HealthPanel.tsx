import { count, duration, num, when } from '../format';
import { useHealth } from '../hooks/useHealth';
import type { Health } from '../schemas';
import { stepLabel } from '../timeline';
import { StorageDetail } from './StorageDetail';
import { UplinkDetail } from './UplinkDetail';

/** The model and its head, and whether the head has learnt from the technicians' examples (agent/src/teach/refitter.ts). */
function modelText(m: Health['model']): string {
  // The states of agent/src/http/routes/health.ts `model`: the bare word ("out-of-process") said nothing, and the load error was dropped.
  if (m.state === 'out-of-process') return 'loaded by the vision service in its own process (tu-agent run --service vision), not by this agent: its model is not reported here';
  if (m.state === 'not-loaded') return m.error ? `not loaded: ${m.error.message} (${m.error.code})` : 'not loaded yet';
  if (m.state !== 'loaded') return m.state;
  const model = `${m.id ?? ''} ${m.version ?? ''} on ${m.backend ?? '?'}`;
  if (!m.head) return `${model}, no trained head`;
  const r = m.refit;
  const refit = r
    ? `refitted to ${count(r.used, "technician's example", "technicians' examples")} (at ${when(r.at)})${r.skipped ? `; ${num(r.skipped)} not usable (a type the head does not know, or the wrong size)` : ''}${r.otherBackbone ? `; ${num(r.otherBackbone)} left out (embedded by another model)` : ''}${r.older ? `; ${num(r.older)} older not used (a refit uses the newest ${count(r.used + r.skipped + (r.otherBackbone ?? 0), 'label', 'labels')})` : ''}`
    : "as shipped (not refitted to technicians' examples)";
  return `${model}, head ${m.head.id}, ${refit}`;
}

/** The gateway's health in detail: broker, services and their instances, model, queue, uplink, storage. */
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
            {h.gatewayId}
            {h.agent ? ` · agent version ${h.agent.version}` : ''} ·{' '}
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
          <dd>{h.broker.up ? `up, ${count(h.broker.clients, 'connection')} on the gateway's local message bus (its services, orchestrator and live feed)` : 'DOWN'}</dd>
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
                        <code>{i.instanceId}</code> · {count(i.inflight, 'request')} in progress
                      </li>
                    ))}
                  </ul>
                )}
              </dd>
            </>
          ))}
          <dt>Model</dt>
          <dd data-testid="health-model">{modelText(h.model)}</dd>
          <dt>Queue</dt>
          <dd>
            {count(h.orchestrator.running, 'analysis', 'analyses')} running, {num(h.orchestrator.queued)} waiting to start
          </dd>
          <dt>Cloud uplink</dt>
          <dd>
            <UplinkDetail u={h.uplink} />
          </dd>
          {h.storage && (
            <>
              <dt>Storage</dt>
              <dd>
                <StorageDetail s={h.storage} />
              </dd>
            </>
          )}
        </dl>
      )}
    </section>
  );
}
