import type { Gateway } from '../graphql';
import { clause, when } from '../format';
import type { Failure } from '../state';

/**
 * Gateways with online state and when the relay last heard from each (connection or event).
 * An online gateway's time is its last event or (re)connection, not a last sighting: keep-alives
 * do not move it (relay/src/ingest/presence.ts), so "online · last seen 3 h ago" of an idle but
 * connected gateway read as a contradiction.
 * Presence is only known as of the last good load: when loading fails, each gateway's presence
 * is shown as unknown with what it was then, never as a current "online".
 */
export function Gateways({ gateways, at, error }: { gateways: Gateway[]; at: number | undefined; error: Failure | undefined }) {
  return (
    <section aria-labelledby="gw-h">
      <h2 id="gw-h">Gateways</h2>
      {error && (
        <p class="bad-text" data-testid="gateways-note">
          {at === undefined ? `Gateways could not be loaded (${clause(error.message)}): presence unknown.` : `Presence unknown: loading failed (${clause(error.message)}). Shown as of ${when(at)}, the last good load.`}
        </p>
      )}
      <ul class="gateways">
        {gateways.map((g) => (
          <li key={g.id}>
            {error ? (
              <span class="badge unknown">presence unknown</span>
            ) : (
              <span class={`badge ${g.online ? 'ok' : 'bad'}`}>{g.online ? 'online' : 'offline'}</span>
            )}{' '}
            <strong>{g.name ?? g.id}</strong> <code>{g.id}</code>
            {error && at !== undefined && <span class="muted"> · {g.online ? 'online' : 'offline'} as of <time dateTime={new Date(at).toISOString()}>{when(at)}</time></span>}
            {g.lastSeen && (
              <span class="muted">
                {' '}
                · {g.online ? 'last event or connection' : 'last seen'} <time dateTime={g.lastSeen}>{when(g.lastSeen)}</time>
              </span>
            )}
          </li>
        ))}
        {gateways.length === 0 && at !== undefined && !error && <li class="muted">No gateway for this tenant.</li>}
        {at === undefined && !error && <li class="muted">Loading…</li>}
      </ul>
    </section>
  );
}
