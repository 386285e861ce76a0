import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import { errorText, getHealth } from '../api';
import type { Health } from '../schemas';

export interface HealthState {
  /** The last health answer (kept while the gateway is unreachable). */
  h?: Health;
  /** When `h` was received (epoch ms): with `err`, how old the shown answer is. */
  at?: number;
  /** Why the last poll failed. */
  err?: string;
  /** Its code: GATEWAY_UNREACHABLE (no answer at all) or what the gateway answered. */
  errCode?: string;
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
        if (live) setState({ h, at: Date.now() });
      } catch (err) {
        const e = errorText(err);
        if (live) setState((s) => ({ ...(s.h ? { h: s.h, at: s.at } : {}), err: e.message, errCode: e.code }));
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
