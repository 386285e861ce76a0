import { useEffect, useState } from 'preact/hooks';
import { describe, loadToken, onAuthChange, signOut, token, watchHashToken } from '../auth';
import { when } from '../format';
import { App } from './App';
import { SignIn } from './SignIn';

const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The sign-in prompt until the page holds a token, then the app (which the token's expiry or a 401 ends). */
export function Root() {
  const [current, setCurrent] = useState<string | null>(() => loadToken());
  const [why, setWhy] = useState<string | null>(null);
  useEffect(
    () =>
      onAuthChange((reason) => {
        setCurrent(token());
        setWhy(reason);
      }),
    [],
  );
  useEffect(() => watchHashToken(), []);
  const session = current ? describe(current) : null;
  useEffect(() => {
    if (!session) return;
    const at = new Date(session.exp * 1000);
    const timer = setTimeout(() => signOut(`Your technician token expired at ${when(at)}. Sign in again with a new one.`), Math.min(Math.max(0, at.getTime() - Date.now()), MAX_TIMEOUT_MS));
    return () => clearTimeout(timer);
  }, [session?.exp]);
  if (!current) return <SignIn why={why} />;
  return <App key={current} session={session} />;
}
