import type { Gateway } from '../graphql';

/** Gateways with online state and when the relay last heard from each (connection or event). */
export function Gateways({ gateways }: { gateways: Gateway[] }) {
  return (
    <section aria-labelledby="gw-h">
      <h2 id="gw-h">Gateways</h2>
      <ul class="gateways">
        {gateways.map((g) => (
          <li key={g.id}>
            <span class={`badge ${g.online ? 'ok' : 'bad'}`}>{g.online ? 'online' : 'offline'}</span> <strong>{g.name ?? g.id}</strong> <code>{g.id}</code>
            {g.lastSeen && <span class="muted"> · last seen <time dateTime={g.lastSeen}>{new Date(g.lastSeen).toLocaleString()}</time></span>}
          </li>
        ))}
        {gateways.length === 0 && <li class="muted">No gateway for this tenant.</li>}
      </ul>
    </section>
  );
}
