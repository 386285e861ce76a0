import type { FeedEvent } from '../graphql';
import { reason, resultsRecognition } from '../format';

const resultsOf = (data: unknown): unknown => (typeof data === 'object' && data !== null ? (data as Record<string, unknown>)['results'] : undefined);

/** The tenant's events, newest first: the stored ones on load, then live (merged by id in state.ts). */
export function LiveFeed({ feed }: { feed: FeedEvent[] }) {
  return (
    <section aria-labelledby="feed-h">
      <h2 id="feed-h">Live feed</h2>
      <ol class="feed-list" aria-live="polite" aria-label="Live analysis events" tabIndex={0}>
        {feed.map((e) => (
          <li key={e.id} data-event-id={e.id} class={e.type.endsWith('failed') ? 'bad-text' : ''}>
            <time dateTime={e.time}>{new Date(e.time).toLocaleTimeString()}</time> <code>{e.gatewayId}</code> {e.type} <code>{e.analysisId}</code> {e.type === 'analysis.completed' ? resultsRecognition(resultsOf(e.data)) : ''} {reason(e.data)}
          </li>
        ))}
        {feed.length === 0 && <li class="muted">Waiting for events…</li>}
      </ol>
    </section>
  );
}
