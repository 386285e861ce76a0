import { useEffect, useMemo, useReducer } from 'preact/hooks';
import { AccuracyPanel } from '../accuracy';
import { api, AuthError, subscribeLive, whenStored } from '../graphql';
import { initialState, reducer } from '../state';
import { Failures } from './Failures';
import { Gateways } from './Gateways';
import { LiveFeed } from './LiveFeed';
import { MachineDetail } from './MachineDetail';
import { Machines } from './Machines';

const LIVE_TEXT = { live: 'Live', off: 'Feed stopped', connecting: 'Connecting…', reconnecting: 'Reconnecting…' } as const;

export function Dashboard({ token, onSignOut }: { token: string; onSignOut: (msg?: string) => void }) {
  const [s, dispatch] = useReducer(reducer, initialState);
  const relay = useMemo(() => api(token), [token]);

  const fail = (err: unknown) => {
    if (err instanceof AuthError) onSignOut(`The relay refused this token (${err.message}). Sign in again with a valid token.`);
    else dispatch({ kind: 'error', message: err instanceof Error ? err.message : String(err) });
  };
  const loadRecent = () => relay.recentEvents().then((events) => dispatch({ kind: 'recent', events })).catch(fail);

  useEffect(() => {
    const load = () => relay.gatewaysAndFailures().then((r) => dispatch({ kind: 'gateways', ...r })).catch(fail);
    void load();
    const i = setInterval(() => void load(), 10_000);
    return () => clearInterval(i);
  }, [relay, s.stored]);
  useEffect(() => {
    relay.machines(s.search, s.type).then((machines) => dispatch({ kind: 'machines', machines })).catch(fail);
  }, [relay, s.search, s.type, s.stored]);
  useEffect(() => {
    if (!s.selected) return dispatch({ kind: 'detail', detail: undefined });
    relay.machine(s.selected).then((detail) => dispatch({ kind: 'detail', detail })).catch(fail);
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
        connected: () => {
          dispatch({ kind: 'live', live: 'live' });
          void loadRecent();
        },
        closed: () => dispatch({ kind: 'live', live: 'reconnecting' }),
        event: (e) => {
          dispatch({ kind: 'event', event: e });
          if (e.type === 'analysis.completed' || e.type === 'analysis.failed')
            whenStored(relay, e.analysisId, e.type.slice('analysis.'.length))
              .then(() => dispatch({ kind: 'stored' }))
              .catch(fail);
        },
        stopped: (message) => {
          dispatch({ kind: 'live', live: 'off' });
          fail(new Error(message));
        },
      }),
    [token],
  );

  return (
    <>
      <header class="top">
        <h1>TU Edge Analysis · Cloud</h1>
        <span role="status" class={`feed feed-${s.live}`}>{LIVE_TEXT[s.live]}</span>
        <button type="button" onClick={() => onSignOut()}>Sign out</button>
      </header>
      <main>
        {s.error && <p class="error" role="alert">{s.error}</p>}
        <Gateways gateways={s.gateways} />
        <LiveFeed feed={s.feed} />
        <section aria-labelledby="m-h">
          <h2 id="m-h">Machines</h2>
          <Machines
            machines={s.machines}
            types={s.types}
            search={s.search}
            type={s.type}
            onSearch={(search) => dispatch({ kind: 'search', search })}
            onType={(type) => dispatch({ kind: 'type', type })}
            onSelect={(id) => dispatch({ kind: 'select', id })}
          />
          {s.detail && <MachineDetail m={s.detail.m} analyses={s.detail.analyses} />}
        </section>
        <AccuracyPanel query={relay.query} refresh={s.labelled} onError={fail} />
        <Failures failures={s.failures} />
      </main>
    </>
  );
}
