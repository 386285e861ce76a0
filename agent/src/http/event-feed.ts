import type { AnyEvent, BusClient } from '@tu/shared';

/** A fan-out of validated bus events to in-process listeners (the UI WebSocket clients). */
export interface EventFeed {
  /** Adds a listener; returns a function removing it. */
  subscribe(listener: (event: AnyEvent) => void): () => void;
  readonly listeners: number;
  /** Unsubscribes from the bus and removes every listener. */
  stop(): Promise<void>;
}

/**
 * One subscription on an observer bus client (`observer:ui`: may subscribe to events and
 * nothing else, so commands can never reach the UI), fanned out to any number of listeners.
 * The bus subscription exists only while someone listens: with no UI open, the feed costs
 * the analysis flow nothing.
 */
export async function createEventFeed(bus: BusClient): Promise<EventFeed> {
  const listeners = new Set<(event: AnyEvent) => void>();
  let off: Promise<() => Promise<void>> | undefined;
  let stopped = false;
  const fanOut = (event: AnyEvent) => {
    for (const l of listeners) l(event);
  };
  const release = () => {
    if (listeners.size > 0 || !off) return;
    const pending = off;
    off = undefined;
    void pending.then((unsubscribe) => unsubscribe()).catch(() => undefined);
  };
  return {
    subscribe(listener) {
      if (stopped) return () => undefined;
      listeners.add(listener);
      off ??= bus.onEvents('all', fanOut);
      return () => {
        listeners.delete(listener);
        release();
      };
    },
    get listeners() {
      return listeners.size;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      listeners.clear();
      const pending = off;
      off = undefined;
      if (pending) await (await pending.catch(() => async () => undefined))();
    },
  };
}

/**
 * What the UI feed sends: the CloudEvent unchanged except the 256-float embedding
 * (≈ 5 KB of JSON the UI never shows) and, outside the terminal events, the thumbnail
 * (≤ 16 KB; the result card takes it from analysis.completed/failed).
 */
export function slimEvent(event: AnyEvent): AnyEvent {
  const terminal = event.type === 'analysis.completed' || event.type === 'analysis.failed';
  const data: Record<string, unknown> = { ...(event.data as Record<string, unknown>) };
  const image = data['image'];
  if (!terminal && image && typeof image === 'object' && 'thumbnail' in image) {
    const { thumbnail: _t, ...rest } = image as Record<string, unknown>;
    data['image'] = rest;
  }
  const result = data['result'];
  if (event.type === 'recognition.completed' && result && typeof result === 'object') {
    const { embedding: _e, ...rest } = result as Record<string, unknown>;
    data['result'] = rest;
  }
  // A technician's label (recognition.labelled) carries the photo's embedding at top level.
  if (event.type === 'recognition.labelled') delete data['embedding'];
  const results = data['results'];
  if (results && typeof results === 'object' && 'recognition' in results) {
    const r = results as Record<string, unknown>;
    const rec = r['recognition'];
    if (rec && typeof rec === 'object') {
      const { embedding: _e, ...rest } = rec as Record<string, unknown>;
      data['results'] = { ...r, recognition: rest };
    }
  }
  return { ...event, data } as AnyEvent;
}
