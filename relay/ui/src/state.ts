/**
 * The dashboard's state and the one reducer that changes it. The live feed is merged by event
 * id: the subscription starts first, then the stored events are loaded (and reloaded whenever the
 * relay has stored a finished analysis), so a reload shows what happened before without a gap,
 * and an event that arrives both ways is shown once.
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
  /** Newest first, at most FEED_SIZE, each event id once. */
  feed: FeedEvent[];
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

const timeOf = (e: FeedEvent): number => {
  const t = Date.parse(e.time);
  return Number.isFinite(t) ? t : 0;
};

/** Both lists' events once each (first occurrence wins), newest first by event time, at most FEED_SIZE. */
export function mergeFeed(current: FeedEvent[], incoming: FeedEvent[]): FeedEvent[] {
  const seen = new Set<string>();
  const out: FeedEvent[] = [];
  for (const e of [...incoming, ...current]) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    out.push(e);
  }
  // Stable: events with the same time keep their arrival order.
  return out.sort((a, b) => timeOf(b) - timeOf(a)).slice(0, FEED_SIZE);
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
      return { ...s, feed: mergeFeed(s.feed, [a.event]), labelled: a.event.type === 'recognition.labelled' ? s.labelled + 1 : s.labelled };
    case 'recent':
      return { ...s, feed: mergeFeed(s.feed, a.events), feedAt: a.at, errors: cleared(s.errors, 'feed') };
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
