import type { Machine } from '../graphql';
import { clause, typeName, when } from '../format';
import type { Photos } from '../photos';
import type { Failure, State } from '../state';
import { Cell } from './Cell';
import { RecognitionEvidence, RegisteredType } from './TypeEvidence';

/** Which time lastSeen is (relay/src/storage/types.ts LastSeenSource), in words. */
const SEEN_SOURCE: Record<string, string> = {
  'capture-time': 'photo taken',
  'capture-time-latest': 'photo taken by then at the latest (the photo gives no time zone)',
  'upload-time': 'photo uploaded to the gateway',
  'completed-time': 'analysed on the gateway',
  gateway: "the gateway's time",
  'relay-receipt': 'received by the relay',
};

/** The last sighting, which time it is, and why the photo's own time was refused (a future or implausible time). */
export function LastSeen({ m }: { m: Machine }) {
  if (!m.lastSeen) return <>—</>;
  const source = m.lastSeenSource ? SEEN_SOURCE[m.lastSeenSource] ?? m.lastSeenSource : null;
  return (
    <>
      <time dateTime={m.lastSeen}>{when(m.lastSeen)}</time>
      {source && <><br /><span class="muted">{source}</span></>}
      {m.lastSeenNote && <><br /><span class="bad-text" data-testid="last-seen-note">{m.lastSeenNote}</span></>}
    </>
  );
}

/**
 * The table's columns, also each cell's name at phone width, where each row is a card (Cell.tsx).
 */
const COLUMNS = ['Photo', 'Name', 'Registered type', 'Last recognised photo (evidence)', 'Brand / model', 'Serial', 'Gateway', 'Last seen'] as const;

/** What a machine is called: its registered name, else its registered id, else the relay's id. */
export const machineLabel = (m: Machine): string => m.name ?? m.registeredId ?? m.id;

/** The filters a list answers, in words: `all machines`, `search "x"`, `type forklift`. */
const filtersText = (f: { search: string; type: string }): string =>
  [f.search && `search "${f.search}"`, f.type && `type ${typeName(f.type)}`].filter(Boolean).join(', ') || 'all machines';

export function Machines(p: {
  machines: Machine[];
  /** The filters and time `machines` answer; undefined before the first answer. */
  loadedFor: State['machinesFor'];
  error: Failure | undefined;
  photos: Photos;
  types: string[];
  search: string;
  type: string;
  onSearch: (s: string) => void;
  onType: (t: string) => void;
  onSelect: (id: string) => void;
}) {
  const f = p.loadedFor;
  const current = !!f && f.search === p.search && f.type === p.type;
  // Rows answering other filters are never passed off as this search's: when this search failed
  // they are not shown at all; while it loads they are shown with what they answer.
  const rows = p.error && !current ? [] : p.machines;
  const note = p.error
    ? current
      ? `As of ${when(f.at)} (${filtersText(f)}): reloading failed (${clause(p.error.message)}).`
      : `Could not load ${filtersText(p)}: ${p.error.message}`
    : !f
      ? 'Loading…'
      : !current
        ? `Loading ${filtersText(p)}… The rows below are ${filtersText(f)} as of ${when(f.at)}.`
        : undefined;
  return (
    <>
      <div class="filters">
        <div><label for="m-search">Search</label>
        <input id="m-search" type="search" placeholder="name, brand, model, serial, id" value={p.search} onInput={(e) => p.onSearch((e.currentTarget as HTMLInputElement).value)} /></div>
        <div><label for="m-type">Type</label>
        <select id="m-type" value={p.type} onChange={(e) => p.onType((e.currentTarget as HTMLSelectElement).value)}><option value="">all</option>{p.types.map((t) => <option key={t} value={t}>{typeName(t)}</option>)}</select></div>
      </div>
      {note && <p class={p.error ? 'bad-text' : 'muted'} data-testid="machines-note">{note}</p>}
      <div class="table-wrap" role="region" aria-label="Machines table" tabIndex={0}>
      <table class="cards">
        <thead><tr>{COLUMNS.map((c) => <th key={c}>{c}</th>)}</tr></thead>
        <tbody>
          {rows.map((m) => (
            <tr key={m.id} data-machine-id={m.id}>
              <Cell label={COLUMNS[0]}>{m.latestThumbnail && <img src={`data:image/jpeg;base64,${m.latestThumbnail}`} alt={`Latest photo of ${machineLabel(m)}`} width={64} />}</Cell>
              <Cell label={COLUMNS[1]}><button type="button" class="link" onClick={() => p.onSelect(m.id)}>{machineLabel(m)}</button>{m.name && m.registeredId && <><br /><code>{m.registeredId}</code></>}</Cell>
              <Cell label={COLUMNS[2]}><RegisteredType m={m} /></Cell>
              <Cell label={COLUMNS[3]}><RecognitionEvidence m={m} photos={p.photos} /></Cell>
              <Cell label={COLUMNS[4]}>{[m.brand, m.model].filter(Boolean).join(' ') || '—'}</Cell><Cell label={COLUMNS[5]}>{m.serialNumber ?? '—'}</Cell><Cell label={COLUMNS[6]}><code>{m.gatewayId}</code></Cell>
              <Cell label={COLUMNS[7]} testid="last-seen"><LastSeen m={m} /></Cell>
            </tr>
          ))}
          {rows.length === 0 && current && !p.error && <tr><td colSpan={8} class="muted">No machine matches.</td></tr>}
          {rows.length === 0 && p.error && !current && <tr><td colSpan={8} class="muted">Not loaded (see above).</td></tr>}
        </tbody>
      </table>
      </div>
    </>
  );
}
