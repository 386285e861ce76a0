import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import { errorText, getHealth } from '../api';
import type { Health } from '../schemas';

export interface HealthState {
  /** The last health answer (kept while the gateway is unreachable). */
  h?: Health;
  /** Why the last poll failed. */
  err?: string;
}

/**
 * Polls GET /api/v1/health every `intervalMs` while the component that owns it is mounted
 * (the App, once); the banner and the panel read it through HealthContext.
 */
export function useHealthPoll(intervalMs = 5000): HealthState {
  const [state, setState] = useState<HealthState>({});
  useEffect(() => {
    let live = true;
    const poll = async () => {
      try {
        const h = await getHealth();
        if (live) setState({ h });
      } catch (err) {
        if (live) setState((s) => ({ ...(s.h ? { h: s.h } : {}), err: errorText(err).message }));
      }
    };
    void poll();
    const timer = setInterval(() => void poll(), intervalMs);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [intervalMs]);
  return state;
}

export const HealthContext = createContext<HealthState>({});
export const useHealth = (): HealthState => useContext(HealthContext);
