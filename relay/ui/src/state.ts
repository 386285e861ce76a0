/**
 * The dashboard's state and the one reducer that changes it. The live feed is merged by event
 * id: the subscription starts first, then the stored events are loaded (and reloaded whenever the
 * relay has stored a finished analysis), so a reload shows what happened before without a gap,
 * and an event that arrives both ways is shown once.
 */
import type { Analysis, FeedEvent, Gateway, Machine } from './graphql';
import { FEED_SIZE } from './graphql';

export type Live = 'connecting' | 'live' | 'reconnecting' | 'off';

export interface State {
  gateways: Gateway[];
  failures: Analysis[];
  machines: Machine[];
  /** Every registered type seen so far (a filtered list must not shrink the filter's own options). */
  types: string[];
  search: string;
  type: string;
  selected: string | undefined;
  detail: { m: Machine; analyses: Analysis[] } | undefined;
  /** Newest first, at most FEED_SIZE, each event id once. */
  feed: FeedEvent[];
  error: string | undefined;
  live: Live;
  /** Bumped when the relay has stored a finished analysis: machines, detail, failures and the feed reload. */
  stored: number;
  /** Bumped when a technician's label arrives: the accuracy panel reloads. */
  labelled: number;
}

export const initialState: State = {
  gateways: [],
  failures: [],
  machines: [],
  types: [],
  search: '',
  type: '',
  selected: undefined,
  detail: undefined,
  feed: [],
  error: undefined,
  live: 'connecting',
  stored: 0,
  labelled: 0,
};

export type Action =
  | { kind: 'gateways'; gateways: Gateway[]; failures: Analysis[] }
  | { kind: 'machines'; machines: Machine[] }
  | { kind: 'search'; search: string }
  | { kind: 'type'; type: string }
  | { kind: 'select'; id: string }
  | { kind: 'detail'; detail: State['detail'] }
  | { kind: 'event'; event: FeedEvent }
  | { kind: 'recent'; events: FeedEvent[] }
  | { kind: 'live'; live: Live }
  | { kind: 'stored' }
  | { kind: 'error'; message: string | undefined };

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
      return { ...s, gateways: a.gateways, failures: a.failures, error: undefined };
    case 'machines':
      return { ...s, machines: a.machines, types: [...new Set([...s.types, ...a.machines.map((m) => m.type).filter((t): t is string => !!t)])].sort() };
    case 'search':
      return { ...s, search: a.search };
    case 'type':
      return { ...s, type: a.type };
    case 'select':
      return { ...s, selected: a.id };
    case 'detail':
      return { ...s, detail: a.detail };
    case 'event':
      return { ...s, feed: mergeFeed(s.feed, [a.event]), labelled: a.event.type === 'recognition.labelled' ? s.labelled + 1 : s.labelled };
    case 'recent':
      return { ...s, feed: mergeFeed(s.feed, a.events) };
    case 'live':
      return { ...s, live: a.live };
    case 'stored':
      return { ...s, stored: s.stored + 1 };
    case 'error':
      return { ...s, error: a.message };
  }
}
