import { STATUS_TEXT, typeText, when } from '../format';
import type { AnalysisListItem } from '../schemas';

/**
 * Recent analyses: which photo (file name), what was recognised, when; opening one loads its card.
 * "None yet." only once the gateway has answered (`loaded`): before that nothing is known.
 */
export function History({
  items,
  loaded,
  error,
  onOpen,
  onReload,
}: {
  items: AnalysisListItem[];
  loaded: boolean;
  error: string | undefined;
  onOpen: (item: AnalysisListItem) => void;
  onReload: () => void;
}) {
  return (
    <section id="history" aria-labelledby="history-h">
      <h2 id="history-h">Recent analyses</h2>
      <button type="button" class="small-button" onClick={onReload}>
        Reload history
      </button>
      {error && (
        <p class="error" role="alert">
          Could not load the history: {error}
        </p>
      )}
      {items.length === 0 && !error && <p class="muted">{loaded ? 'None yet.' : 'Loading the history from the gateway…'}</p>}
      <ul class="history">
        {items.map((i) => {
          const name = i.fileName ?? 'photo without a file name';
          const type = i.status === 'failed' && i.machineType === undefined ? 'no type (failed)' : typeText(i.machineType);
          return (
            <li key={i.analysisId}>
              <button type="button" class="history-item" onClick={() => onOpen(i)} aria-label={`Open analysis of ${name}: ${type} (${i.status}, ${when(i.createdAt)})`}>
                <span class={`badge badge-${i.status}`}>{STATUS_TEXT[i.status] ?? i.status}</span>
                <span class="history-name">{name}</span>
                <span class="history-type">{type}</span>
                <span>{when(i.createdAt)}</span>
                <code>{i.analysisId.slice(0, 10)}</code>
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
