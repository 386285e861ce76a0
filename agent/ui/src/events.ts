import { token } from './auth';

export type FeedState = 'connecting' | 'live' | 'reconnecting';

/**
 * The agent's live event feed (WebSocket /api/v1/events), reconnecting with backoff.
 * `onOpen` runs after every (re)connect so the UI can reload what it may have missed.
 */
export function connectEvents(opts: { onFrame: (json: unknown) => void; onState: (s: FeedState) => void; onOpen: () => void }): () => void {
  let ws: WebSocket | undefined;
  let stopped = false;
  let delay = 500;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const open = () => {
    // The token rides in the query: a browser's WebSocket cannot send an Authorization header.
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/events?token=${encodeURIComponent(token() ?? '')}`;
    ws = new WebSocket(url);
    ws.onopen = () => {
      delay = 500;
      opts.onState('live');
      opts.onOpen();
    };
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') return;
      try {
        opts.onFrame(JSON.parse(m.data));
      } catch {
        /* not JSON: ignored */
      }
    };
    ws.onclose = () => {
      if (stopped) return;
      opts.onState('reconnecting');
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 10_000);
    };
  };
  opts.onState('connecting');
  open();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    ws?.close();
  };
}
