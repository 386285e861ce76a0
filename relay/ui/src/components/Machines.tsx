import type { Machine } from '../graphql';
import { typeName } from '../format';
import { RecognitionEvidence, RegisteredType } from './TypeEvidence';

/** Which time lastSeen is (relay/src/storage/types.ts LastSeenSource), in words. */
const SEEN_SOURCE: Record<string, string> = {
  'capture-time': 'photo taken',
  'upload-time': 'photo uploaded to the gateway',
  'completed-time': 'analysed on the gateway',
  gateway: "the gateway's time",
  'relay-receipt': 'received by the relay',
};

/** The last sighting, which time it is, and why the photo's own time was refused (a future or implausible time). */
function LastSeen({ m }: { m: Machine }) {
  if (!m.lastSeen) return <>—</>;
  const source = m.lastSeenSource ? SEEN_SOURCE[m.lastSeenSource] ?? m.lastSeenSource : null;
  return (
    <>
      <time dateTime={m.lastSeen}>{new Date(m.lastSeen).toLocaleString()}</time>
      {source && <><br /><span class="muted">{source}</span></>}
      {m.lastSeenNote && <><br /><span class="bad-text" data-testid="last-seen-note">{m.lastSeenNote}</span></>}
    </>
  );
}

/** What a machine is called: its registered name, else its registered id, else the relay's id. */
export const machineLabel = (m: Machine): string => m.name ?? m.registeredId ?? m.id;

export function Machines(p: { machines: Machine[]; types: string[]; search: string; type: string; onSearch: (s: string) => void; onType: (t: string) => void; onSelect: (id: string) => void }) {
  return (
    <>
      <div class="filters">
        <div><label for="m-search">Search</label>
        <input id="m-search" type="search" placeholder="name, brand, model, serial, id" value={p.search} onInput={(e) => p.onSearch((e.currentTarget as HTMLInputElement).value)} /></div>
        <div><label for="m-type">Type</label>
        <select id="m-type" value={p.type} onChange={(e) => p.onType((e.currentTarget as HTMLSelectElement).value)}><option value="">all</option>{p.types.map((t) => <option key={t} value={t}>{typeName(t)}</option>)}</select></div>
      </div>
      <div class="table-wrap" role="region" aria-label="Machines table" tabIndex={0}>
      <table>
        <thead><tr><th>Photo</th><th>Name</th><th>Registered type</th><th>Last photo (evidence)</th><th>Brand / model</th><th>Serial</th><th>Gateway</th><th>Last seen</th></tr></thead>
        <tbody>
          {p.machines.map((m) => (
            <tr key={m.id} data-machine-id={m.id}>
              <td>{m.latestThumbnail && <img src={`data:image/jpeg;base64,${m.latestThumbnail}`} alt={`Latest photo of ${machineLabel(m)}`} width={64} />}</td>
              <td><button type="button" class="link" onClick={() => p.onSelect(m.id)}>{machineLabel(m)}</button>{m.name && m.registeredId && <><br /><code>{m.registeredId}</code></>}</td>
              <td><RegisteredType m={m} /></td>
              <td><RecognitionEvidence m={m} /></td>
              <td>{[m.brand, m.model].filter(Boolean).join(' ') || '—'}</td><td>{m.serialNumber ?? '—'}</td><td><code>{m.gatewayId}</code></td><td data-testid="last-seen"><LastSeen m={m} /></td>
            </tr>
          ))}
          {p.machines.length === 0 && <tr><td colSpan={8} class="muted">No machine matches.</td></tr>}
        </tbody>
      </table>
      </div>
    </>
  );
}
