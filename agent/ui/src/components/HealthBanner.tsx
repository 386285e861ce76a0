import { useHealth } from '../hooks/useHealth';
import { stepLabel } from '../timeline';
import { connectionAlert, fullAlert } from '../uplink';

/** What stops analyses right now, in words the technician can act on. */
export function HealthBanner() {
  const { h, err, errCode } = useHealth();
  const msgs: string[] = [];
  // "Not reachable" only when nothing answered; an error answer comes from a gateway that is there.
  if (err) msgs.push(errCode === 'GATEWAY_UNREACHABLE' ? `Gateway not reachable: ${err}` : `The gateway's health check failed: ${err}`);
  if (h && !h.broker.up) msgs.push('The gateway message broker is down: analyses cannot run.');
  // An optional step's service being down costs its result, not the analysis (agent/src/http/routes/health.ts says the same).
  if (h)
    for (const [name, s] of Object.entries(h.services))
      if (!s.up)
        msgs.push(
          s.optional
            ? `${name} (${stepLabel(s.step)}, an optional step) is not running: analyses skip that step after waiting for it and still complete, without its result.`
            : `${name} (${stepLabel(s.step)}) is not running: analyses will fail at that step.`,
        );
  const u = h?.uplink;
  const connection = u && connectionAlert(u);
  if (connection) msgs.push(connection);
  const full = u && fullAlert(u);
  if (full) msgs.push(full);
  if (h?.model.state === 'loaded' && !h.model.head)
    msgs.push(
      'No machine-type model (head) is installed: the gateway cannot tell excavators, loaders, dozers and the other machine types apart. Only forklifts, cranes and tractors are guessed; every other photo shows type "unknown". Photos are still stored and compared. Ask your administrator to install the default head.',
    );
  if (!msgs.length) return null;
  return (
    <div class="banner" role="alert">
      {msgs.map((m) => (
        <p key={m}>{m}</p>
      ))}
    </div>
  );
}
