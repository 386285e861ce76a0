import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { ROLE_MEANING, ROLES } from '@tu/shared/internal/technician-roles';
import { checkToken } from '../api';
import { signIn } from '../auth';

/**
 * Shown without a token, or when the gateway refused it (401: expired, another gateway):
 * why, how to get a token, and what each role allows.
 */
export function SignIn({ why }: { why: string | null }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    // A pasted link works as well as the bare token.
    const t = value.trim().replace(/^.*#token=/, '');
    if (!t) return setError('Paste the technician token first.');
    setBusy(true);
    const refused = await checkToken(t);
    setBusy(false);
    if (refused) setError(refused);
    else signIn(t);
  };
  return (
    <>
      <header class="top">
        <h1>TU Edge Analysis</h1>
      </header>
      <main>
        <section class="signin" aria-labelledby="signin-h">
          <h2 id="signin-h">Sign in to this gateway</h2>
          {why && (
            <p class="banner" role="alert">
              {why}
            </p>
          )}
          <p>This page uploads photos to the gateway and shows and changes what it knows, so it needs a technician token.</p>
          <form onSubmit={(e) => void submit(e)}>
            <label for="token">Technician token (or the link with #token=)</label>
            <textarea id="token" rows={3} value={value} onInput={(e) => setValue((e.target as HTMLTextAreaElement).value)} autocomplete="off" spellcheck={false} />
            <button class="big-button" type="submit" disabled={busy}>
              {busy ? 'Checking…' : 'Sign in'}
            </button>
          </form>
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
          <h3>Where to get a token</h3>
          <ul>
            <li>
              <strong>On the gateway</strong> (first installation): run <code>tu-agent token</code>. It prints a token for this gateway, valid 12 hours; open{' '}
              <code>http://GATEWAY/#token=TOKEN</code> or paste it above.
            </li>
            <li>
              <strong>Away from the gateway</strong>: ask the relay operator for a token for this gateway (<code>npm run relay -- technicians token --gateway ID --role upload --name YOU</code>). The gateway checks it
              without any network.
            </li>
          </ul>
          <h3>What a token can allow</h3>
          <dl class="roles">
            {ROLES.map((r) => (
              <Fragment key={r}>
                <dt>{r}</dt>
                <dd>{ROLE_MEANING[r]}</dd>
              </Fragment>
            ))}
          </dl>
        </section>
      </main>
    </>
  );
}
