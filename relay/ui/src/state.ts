/**
 * The dashboard's state and the one reducer that changes it. The live feed is merged by event
 * id: the subscription starts first, then the stored events are loaded (and reloaded whenever the
 * relay has stored a finished analysis), so a reload shows what happened before without a gap,
 * and an event that arrives both ways is shown once. The feed is in the relay's order, newest
 * received first (relay/src/storage/sql-storage.ts listEvents), not sorted by the gateways' event
 * times: the stored page is the newest 100 received, so a gateway flushing yesterday's backlog
 * filled a reloaded feed, while the open page, sorted by time, still showed today's events on top
 * and the backlog below; the two disagreed.
 */
import type { Analysis, FeedEvent, Gateway, Machine } from './graphql';
import { FEED_SIZE } from './graphql';

export type Live = 'connecting' | 'live' | 'reconnecting' | 'off';

/**
 * What the dashboard asks the relay for, each failing on its own: a poll that succeeds clears
 * only its own failure, so a failed search is not hidden 10 s later by the gateways poll.
 */
export type Source = 'gateways' | 'machines' | 'detail' | 'feed' | 'stored' | 'live' | 'accuracy';
/** A source's latest failure: the relay's message and when it was last tried (ms). */
export interface Failure {
  message: string;
  at: number;
}

export interface State {
  gateways: Gateway[];
  failures: Analysis[];
  /** The relay has older failed analyses than those listed. */
  moreFailures: boolean;
  /** When gateways and failures last loaded (ms); presence is only known as of then. */
  gatewaysAt: number | undefined;
  machines: Machine[];
  /** The filters and time the shown machines answer (a failed or pending search must not pass its rows off as this one's). */
  machinesFor: { search: string; type: string; at: number } | undefined;
  /** Every registered type seen so far (a filtered list must not shrink the filter's own options). */
  types: string[];
  search: string;
  type: string;
  selected: string | undefined;
  /** The selected machine as loaded at `at` (ms); `more`: the relay has older analyses than those listed. */
  detail: { m: Machine; analyses: Analysis[]; more: boolean; at: number } | undefined;
  /** Newest received first, at most FEED_SIZE, each event id once. */
  feed: FeedEvent[];
  /** The feed's events that came live and were in no stored page yet: received after the last one loaded. */
  liveOnly: ReadonlySet<string>;
  /** When the stored events last loaded (ms); until then the feed holds at most what came live. */
  feedAt: number | undefined;
  errors: Partial<Record<Source, Failure>>;
  live: Live;
  /** Bumped when the relay has stored a finished analysis: machines, detail, failures and the feed reload. */
  stored: number;
  /** Bumped when a technician's label arrives: the accuracy panel reloads. */
  labelled: number;
}

export const initialState: State = {
  gateways: [],
  failures: [],
  moreFailures: false,
  gatewaysAt: undefined,
  machines: [],
  machinesFor: undefined,
  types: [],
  search: '',
  type: '',
  selected: undefined,
  detail: undefined,
  feed: [],
  liveOnly: new Set(),
  feedAt: undefined,
  errors: {},
  live: 'connecting',
  stored: 0,
  labelled: 0,
};

export type Action =
  | { kind: 'gateways'; gateways: Gateway[]; failures: Analysis[]; moreFailures: boolean; at: number }
  | { kind: 'machines'; machines: Machine[]; search: string; type: string; at: number }
  | { kind: 'search'; search: string }
  | { kind: 'type'; type: string }
  | { kind: 'select'; id: string }
  | { kind: 'detail'; detail: State['detail'] }
  | { kind: 'event'; event: FeedEvent }
  | { kind: 'recent'; events: FeedEvent[]; at: number }
  | { kind: 'live'; live: Live }
  | { kind: 'stored' }
  /** A source answered: its own failure (only) is over. */
  | { kind: 'ok'; source: Source }
  | { kind: 'error'; source: Source; message: string; at: number };

/** `errors` without `source`'s (the same object when it had none, so nothing re-renders for it). */
const cleared = (errors: State['errors'], source: Source): State['errors'] => {
  if (!errors[source]) return errors;
  const { [source]: _gone, ...rest } = errors;
  return rest;
};

/** A live event on top (the relay fans an event out as it receives it: nothing shown was received later), once. */
export function withLive(s: Pick<State, 'feed' | 'liveOnly'>, e: FeedEvent): Pick<State, 'feed' | 'liveOnly'> {
  if (s.feed.some((x) => x.id === e.id)) return s;
  return { feed: [e, ...s.feed].slice(0, FEED_SIZE), liveOnly: new Set([...s.liveOnly, e.id]) };
}

/**
 * A stored page (the relay's newest received, in its order) under the live events it does not
 * hold yet (received after it was read, or fanned out before they were stored): what a reload
 * shows. An event shown before that is in neither was received before the whole page: gone, as
 * after a reload.
 */
export function withStored(s: Pick<State, 'feed' | 'liveOnly'>, page: FeedEvent[]): Pick<State, 'feed' | 'liveOnly'> {
  const inPage = new Set(page.map((e) => e.id));
  const live = s.feed.filter((e) => s.liveOnly.has(e.id) && !inPage.has(e.id));
  return { feed: [...live, ...page].slice(0, FEED_SIZE), liveOnly: new Set(live.map((e) => e.id)) };
}

export function reducer(s: State, a: Action): State {
  switch (a.kind) {
    case 'gateways':
      return { ...s, gateways: a.gateways, failures: a.failures, moreFailures: a.moreFailures, gatewaysAt: a.at, errors: cleared(s.errors, 'gateways') };
    case 'machines':
      return {
        ...s,
        machines: a.machines,
        machinesFor: { search: a.search, type: a.type, at: a.at },
        types: [...new Set([...s.types, ...a.machines.map((m) => m.type).filter((t): t is string => !!t)])].sort(),
        errors: cleared(s.errors, 'machines'),
      };
    case 'search':
      return { ...s, search: a.search };
    case 'type':
      return { ...s, type: a.type };
    case 'select':
      // Another machine's detail must not stand in for this one while it loads (or if it fails).
      return a.id === s.selected ? s : { ...s, selected: a.id, detail: undefined, errors: cleared(s.errors, 'detail') };
    case 'detail':
      return { ...s, detail: a.detail, errors: cleared(s.errors, 'detail') };
    case 'event':
      return { ...s, ...withLive(s, a.event), labelled: a.event.type === 'recognition.labelled' ? s.labelled + 1 : s.labelled };
    case 'recent':
      return { ...s, ...withStored(s, a.events), feedAt: a.at, errors: cleared(s.errors, 'feed') };
    case 'live':
      return { ...s, live: a.live, errors: a.live === 'live' ? cleared(s.errors, 'live') : s.errors };
    case 'stored':
      return { ...s, stored: s.stored + 1, errors: cleared(s.errors, 'stored') };
    case 'ok':
      return { ...s, errors: cleared(s.errors, a.source) };
    case 'error':
      return { ...s, errors: { ...s.errors, [a.source]: { message: a.message, at: a.at } } };
  }
}
