import { useEffect, useMemo, useReducer } from 'preact/hooks';
import { AccuracyPanel } from '../accuracy';
import { clause, when } from '../format';
import { api, AuthError, subscribeLive, whenStored } from '../graphql';
import { photosOf } from '../photos';
import { initialState, reducer, type Source } from '../state';
import { Failures } from './Failures';
import { Gateways } from './Gateways';
import { LiveFeed } from './LiveFeed';
import { MachineDetail } from './MachineDetail';
import { Machines } from './Machines';

const LIVE_TEXT = { live: 'Live', off: 'Feed stopped', connecting: 'Connecting…', reconnecting: 'Reconnecting…' } as const;
/** What failed, before each source's message (state.ts Source); the live feed's message says it itself. */
const FAILED: Record<Source, string> = {
  gateways: 'Gateways and failures could not be loaded',
  machines: 'Machines could not be loaded',
  detail: 'The machine could not be loaded',
  feed: 'Stored events could not be loaded',
  stored: 'Could not check that the relay stored an analysis',
  live: '',
  accuracy: 'Real-world accuracy could not be loaded',
};
/** The sources answered over POST /graphql (the live feed is its own socket, which can be up while these fail). */
const QUERIES: Source[] = ['gateways', 'machines', 'detail', 'feed', 'stored', 'accuracy'];

export function Dashboard({ token, onSignOut }: { token: string; onSignOut: (msg?: string) => void }) {
  const [s, dispatch] = useReducer(reducer, initialState);
  const relay = useMemo(() => api(token), [token]);

  /** A failed request of `source`: signs out on a refused token, else records it for that source only. */
  const refused = (message: string) => onSignOut(`The relay refused this token (${clause(message)}). Sign in again with a valid token.`);
  const failed = (source: Source) => (err: unknown) => {
    if (err instanceof AuthError) refused(err.message);
    else dispatch({ kind: 'error', source, message: err instanceof Error ? err.message : String(err), at: Date.now() });
  };
  const loadRecent = () => relay.recentEvents().then((events) => dispatch({ kind: 'recent', events, at: Date.now() })).catch(failed('feed'));

  useEffect(() => {
    const load = () => relay.gatewaysAndFailures().then((r) => dispatch({ kind: 'gateways', ...r, at: Date.now() })).catch(failed('gateways'));
    void load();
    const i = setInterval(() => void load(), 10_000);
    return () => clearInterval(i);
  }, [relay, s.stored]);
  useEffect(() => {
    // An answer to filters no longer shown (typing is faster than the relay) is dropped, not shown under the new ones.
    let current = true;
    const { search, type } = s;
    relay
      .machines(search, type)
      .then((machines) => {
        if (current) dispatch({ kind: 'machines', machines, search, type, at: Date.now() });
      })
      .catch((err: unknown) => {
        if (current) failed('machines')(err);
      });
    return () => {
      current = false;
    };
  }, [relay, s.search, s.type, s.stored]);
  useEffect(() => {
    if (!s.selected) return dispatch({ kind: 'detail', detail: undefined });
    let current = true;
    relay
      .machine(s.selected)
      .then((d) => {
        if (!current) return;
        if (d) dispatch({ kind: 'detail', detail: { ...d, at: Date.now() } });
        else failed('detail')(new Error('the relay has no such machine for this tenant'));
      })
      .catch((err: unknown) => {
        if (current) failed('detail')(err);
      });
    return () => {
      current = false;
    };
  }, [relay, s.selected, s.stored]);
  // Stored events again once the relay has stored a finished analysis: an event fanned out while
  // the subscription was still being set up is in storage by then (merged by id, never twice).
  useEffect(() => {
    if (s.stored > 0) void loadRecent();
  }, [s.stored]);
  // Subscribe first, then load the stored events (on every (re)connection), merged by id.
  useEffect(
    () =>
      subscribeLive(token, {
        connected: (again) => {
          dispatch({ kind: 'live', live: 'live' });
          // After a lost connection, analyses may have ended unseen: gateways, machines, the
          // detail and failures reload with the stored events, as a page reload would show them.
          if (again) dispatch({ kind: 'stored' });
          else void loadRecent();
        },
        closed: () => dispatch({ kind: 'live', live: 'reconnecting' }),
        // An expired token would otherwise read "Reload the page to retry" until the next query's 401.
        refused,
        event: (e) => {
          dispatch({ kind: 'event', event: e });
          if (e.type === 'analysis.completed' || e.type === 'analysis.failed')
            whenStored(relay, e.analysisId, e.type.slice('analysis.'.length))
              .then(() => dispatch({ kind: 'stored' }))
              .catch(failed('stored'));
        },
        stopped: (message) => {
          dispatch({ kind: 'live', live: 'off' });
          failed('live')(new Error(message));
        },
      }),
    [token],
  );

  const photos = useMemo(() => photosOf(s.feed, s.detail?.analyses), [s.feed, s.detail]);
  // "Live" alone would read as "all is well" while every query fails: the badge says the feed is
  // live and the rest is not.
  const queriesFailing = QUERIES.some((q) => s.errors[q]);
  const liveText = s.live === 'live' && queriesFailing ? 'Live feed only: queries failing' : LIVE_TEXT[s.live];
  return (
    <>
      <header class="top">
        <h1>TU Edge Analysis · Cloud</h1>
        <span role="status" class={`feed feed-${s.live}${queriesFailing ? ' feed-degraded' : ''}`}>{liveText}</span>
        <button type="button" onClick={() => onSignOut()}>Sign out</button>
      </header>
      <main>
        {(Object.keys(FAILED) as Source[]).map((source) => {
          const e = s.errors[source];
          return e && <p key={source} class="error" role="alert" data-source={source}>{FAILED[source] && `${FAILED[source]}: `}{e.message} (last tried {when(e.at)})</p>;
        })}
        <Gateways gateways={s.gateways} at={s.gatewaysAt} error={s.errors.gateways} />
        <LiveFeed feed={s.feed} loadedAt={s.feedAt} error={s.errors.feed} />
        <section aria-labelledby="m-h">
          <h2 id="m-h">Machines</h2>
          <Machines
            machines={s.machines}
            loadedFor={s.machinesFor}
            error={s.errors.machines}
            photos={photos}
            types={s.types}
            search={s.search}
            type={s.type}
            onSearch={(search) => dispatch({ kind: 'search', search })}
            onType={(type) => dispatch({ kind: 'type', type })}
            onSelect={(id) => dispatch({ kind: 'select', id })}
          />
          {s.selected && !s.detail && (s.errors.detail ? <p class="bad-text">The selected machine could not be loaded (see above).</p> : <p class="muted">Loading the machine…</p>)}
          {s.detail && <MachineDetail m={s.detail.m} analyses={s.detail.analyses} more={s.detail.more} at={s.detail.at} error={s.errors.detail} photos={photos} />}
        </section>
        <AccuracyPanel query={relay.query} refresh={s.labelled} error={s.errors.accuracy} onLoaded={() => dispatch({ kind: 'ok', source: 'accuracy' })} onError={failed('accuracy')} />
        <Failures failures={s.failures} more={s.moreFailures} at={s.gatewaysAt} error={s.errors.gateways} machines={s.machines} />
      </main>
    </>
  );
}
