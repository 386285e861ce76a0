import * as z from 'zod/mini';
import type { FeedEvent } from '../graphql';
import { clause, comparisonText, labelText, reason, resultsRecognition, when } from '../format';
import type { Failure } from '../state';

const field = (data: unknown, key: string): unknown => (typeof data === 'object' && data !== null ? (data as Record<string, unknown>)[key] : undefined);
const resultsOf = (data: unknown): unknown => field(data, 'results');
/** The uploaded file's name (tu.image.uploaded), so the line can be matched with the technician's photo. */
const fileOf = (data: unknown): string | undefined => {
  const r = z.object({ fileName: z.string() }).safeParse(data);
  return r.success ? r.data.fileName : undefined;
};

/**
 * The tenant's events, newest received first: the stored ones on load, then live (merged by id in
 * state.ts). Each line shows the gateway's own time, which a late event (a gateway's backlog) has
 * from long before: the line above the list says so.
 * Until the stored events have loaded (`loadedAt`), or when loading them failed, the list holds only
 * what came live since the page opened: it says so, rather than "Waiting for events…" as if the
 * gateways had sent none.
 */
export function LiveFeed({ feed, loadedAt, error }: { feed: FeedEvent[]; loadedAt: number | undefined; error: Failure | undefined }) {
  const note = error
    ? loadedAt === undefined
      ? `Stored events not loaded (${clause(error.message)}): only events that arrive live from now on are listed.`
      : `As of ${when(loadedAt)}: reloading the stored events failed (${clause(error.message)}); events since then are listed as they arrive live.`
    : undefined;
  return (
    <section aria-labelledby="feed-h">
      <h2 id="feed-h">Live feed</h2>
      <p class="muted">Newest received first. Each line shows when the gateway says it happened: a gateway sending late (after being offline) puts older times on top.</p>
      {note && <p class="bad-text" data-testid="feed-note">{note}</p>}
      <ol class="feed-list" aria-live="polite" aria-label="Live analysis events" tabIndex={0}>
        {feed.map((e) => {
          const file = e.type === 'tu.image.uploaded' ? fileOf(e.data) : undefined;
          return (
            <li key={e.id} data-event-id={e.id} class={e.type.endsWith('failed') ? 'bad-text' : ''}>
              {/* Stored events of any age load here: the date is shown unless it is today (format.ts when). */}
              <time dateTime={e.time}>{when(e.time)}</time> <code>{e.gatewayId}</code> {e.type} <code>{e.analysisId}</code>
              {file && <> <code>{file}</code></>} {e.type === 'analysis.completed' ? resultsRecognition(resultsOf(e.data)) : ''}
              {e.type === 'comparison.completed' ? comparisonText(field(e.data, 'result')) : ''} {e.type === 'recognition.labelled' ? labelText(e.data) : ''} {reason(e.data)}
            </li>
          );
        })}
        {feed.length === 0 && !error && <li class="muted">{loadedAt === undefined ? 'Loading the stored events…' : 'No event yet; new ones appear here live.'}</li>}
      </ol>
    </section>
  );
}
