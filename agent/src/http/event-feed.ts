import type { AnalysisResults, AnyEvent, BusClient } from '@tu/shared';

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
export interface EventFeedOptions {
  /** The photo's thumbnail (base64 JPEG) from the blob store. */
  thumbnailOf?: (sha256: string) => Promise<string | undefined>;
  /** An analysis's results from the orchestrator's state: terminal events leave the bus without them. */
  resultsOf?: (analysisId: string) => AnalysisResults | undefined;
}

export async function createEventFeed(bus: BusClient, opts: EventFeedOptions = {}): Promise<EventFeed> {
  const listeners = new Set<(event: AnyEvent) => void>();
  let off: Promise<() => Promise<void>> | undefined;
  let stopped = false;
  const send = (event: AnyEvent) => {
    for (const l of listeners) l(event);
  };
  /** Terminal events waiting for their thumbnail; later events queue behind them, so the UI sees the bus's order. */
  let reading: Promise<void> | undefined;
  const fanOut = (event: AnyEvent) => {
    if (!reading && !isTerminal(event)) return send(event);
    const prior = reading ?? Promise.resolve();
    const next = prior.then(async () => send(isTerminal(event) ? await completeTerminal(event, opts) : event)).catch(() => undefined);
    reading = next;
    void next.finally(() => {
      if (reading === next) reading = undefined;
    });
  };
  /**
   * The bus unsubscription of the last listener to leave, until the broker acknowledged it. A
   * listener arriving meanwhile subscribes only after it: aedes handles the packets of one read
   * concurrently (node_modules/aedes/lib/client.js, enqueue), so an UNSUBSCRIBE and a SUBSCRIBE of
   * the same filter sent back to back raced there, the removal could land last, and the new feed
   * then stayed silent while saying it was live (a UI reconnecting right after the last one closed;
   * test/http.events.test.ts).
   */
  let releasing: Promise<void> | undefined;
  const release = () => {
    if (listeners.size > 0 || !off) return;
    const pending = off;
    off = undefined;
    const done = pending.then((unsubscribe) => unsubscribe()).catch(() => undefined);
    releasing = done;
    void done.finally(() => {
      if (releasing === done) releasing = undefined;
    });
  };
  return {
    subscribe(listener) {
      if (stopped) return () => undefined;
      listeners.add(listener);
      off ??= releasing ? releasing.then(() => bus.onEvents('all', fanOut)) : bus.onEvents('all', fanOut);
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

const isTerminal = (event: AnyEvent): boolean => event.type === 'analysis.completed' || event.type === 'analysis.failed';

/**
 * The UI edge of "refs on the bus, inline at the edges" (docs/messages.md): analysis.completed/failed
 * travel without results and thumbnail, and the result card shows both, so the feed puts back
 * the results from the orchestrator's state and the thumbnail from the blob store (each absent
 * when there is none: the card shows no picture, or the step events' results it already has).
 */
async function completeTerminal(event: AnyEvent, opts: EventFeedOptions): Promise<AnyEvent> {
  const src = event.data as { analysisId: string; image?: { sha256: string; thumbnail?: string }; results?: AnalysisResults };
  let data: typeof src | undefined;
  if (src.results === undefined && opts.resultsOf) {
    const results = opts.resultsOf(src.analysisId);
    if (results) data = { ...src, results };
  }
  const image = src.image;
  if (image && image.thumbnail === undefined && opts.thumbnailOf) {
    const thumbnail = await opts.thumbnailOf(image.sha256).catch(() => undefined);
    if (thumbnail) data = { ...(data ?? src), image: { ...image, thumbnail } };
  }
  return data ? ({ ...event, data } as AnyEvent) : event;
}

/**
 * What the UI feed sends: the CloudEvent unchanged except the embedding (a reference on the
 * bus; the UI never shows it) and, outside the terminal events, the thumbnail (the result card
 * takes it from analysis.completed/failed).
 */
export function slimEvent(event: AnyEvent): AnyEvent {
  const terminal = isTerminal(event);
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
