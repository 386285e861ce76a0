/**
 * The technician's token in the browser. Opened as `/#token=<t>` (what `npm start` and
 * `tu-agent token` print), the page keeps the token in sessionStorage (this tab only, gone
 * when it closes: a shared phone keeps no standing credential) and removes it from the
 * address bar and history. Every API call sends it as `Authorization: Bearer` (api.ts); the
 * live feed as `?token=` (events.ts: a browser's WebSocket cannot send headers). No cookie is
 * used, so another site cannot make this browser act on the gateway (agent/README.md).
 */
import { ROLES, type Role } from '@tu/shared/internal/technician-roles';

const KEY = 'tu-technician-token';

/** What the page shows of a token: read from its payload, not verified (the gateway verifies). */
export interface TokenInfo {
  token: string;
  sub: string;
  roles: Role[];
  /** Unix seconds. */
  exp: number;
}

export function describe(token: string): TokenInfo | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const json = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: unknown; roles?: unknown; exp?: unknown };
    const roles = Array.isArray(json.roles) ? json.roles.filter((r): r is Role => (ROLES as readonly unknown[]).includes(r)) : [];
    if (typeof json.sub !== 'string' || typeof json.exp !== 'number') return null;
    return { token, sub: json.sub, roles, exp: json.exp };
  } catch {
    return null;
  }
}

type Listener = (why: string | null) => void;
const listeners = new Set<Listener>();
let current: string | null = null;

/** Takes `#token=` from the address, dropping it from the URL and the history; null without one. */
function takeHashToken(): string | null {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return decodeURIComponent(m[1]!);
}

/** Called once at start: takes `#token=` from the address (then drops it from the URL), else the tab's stored token. */
export function loadToken(): string | null {
  current = takeHashToken() ?? sessionStorage.getItem(KEY);
  if (current) sessionStorage.setItem(KEY, current);
  return current;
}

/**
 * A `#token=` link opened in a tab that already shows this page changes only the fragment: the
 * browser does not reload, so loadToken never sees it (the prompt stayed, the token sat in the
 * address bar). Signs in with it on every hash change; returns the unsubscribe.
 */
export function watchHashToken(): () => void {
  const onHash = () => {
    const t = takeHashToken();
    if (t) signIn(t);
  };
  window.addEventListener('hashchange', onHash);
  return () => window.removeEventListener('hashchange', onHash);
}

export const token = (): string | null => current;

export function signIn(t: string): void {
  current = t;
  sessionStorage.setItem(KEY, t);
  for (const l of listeners) l(null);
}

/** Forgets the token; `why` (e.g. the gateway's 401 message) is shown on the sign-in prompt. */
export function signOut(why: string | null = null): void {
  current = null;
  sessionStorage.removeItem(KEY);
  for (const l of listeners) l(why);
}

export function onAuthChange(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

/** Headers of an authenticated API call. */
export const authHeaders = (): Record<string, string> => (current ? { authorization: `Bearer ${current}` } : {});
