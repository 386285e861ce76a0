import type { Analysis, Machine } from '../graphql';
import { reason, resultsRecognition } from '../format';
import { machineLabel } from './Machines';
import { RecognitionEvidence, RegisteredType } from './TypeEvidence';

export function MachineDetail({ m, analyses }: { m: Machine; analyses: Analysis[] }) {
  const label = machineLabel(m);
  return (
    <article class="card" aria-label={`Machine ${label}`}>
      <h3>{label}</h3>
      {m.latestThumbnail && <img src={`data:image/jpeg;base64,${m.latestThumbnail}`} alt="Latest photo" width={200} />}
      <dl class="facts">
        {m.registeredId && <><dt>Registered id</dt><dd><code>{m.registeredId}</code></dd></>}
        <dt>Registered type</dt><dd><RegisteredType m={m} /></dd>
        <dt>Last photo</dt><dd><RecognitionEvidence m={m} /></dd>
        <dt>Gateway</dt><dd><code>{m.gatewayId}</code> (machine <code>{m.id}</code>)</dd>
      </dl>
      <ul>
        {analyses.map((a) => (
          <li key={a.id}><span class={`badge ${a.status === 'failed' ? 'bad' : 'ok'}`}>{a.status}</span> {a.startedAt ? new Date(a.startedAt).toLocaleString() : ''} {resultsRecognition(a.results)} {reason(a.failure)}</li>
        ))}
      </ul>
    </article>
  );
}
