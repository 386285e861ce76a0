import { useState } from 'preact/hooks';

export function SignIn({ onToken }: { onToken: (t: string) => void }) {
  const [v, setV] = useState('');
  return (
    <form class="card" onSubmit={(e) => { e.preventDefault(); if (v.trim()) onToken(v.trim().replace(/^Bearer\s+/i, '')); }}>
      <h2>Sign in</h2>
      <label>
        Access token (JWT)
        <textarea rows={4} value={v} onInput={(e) => setV((e.currentTarget as HTMLTextAreaElement).value)} />
      </label>
      <button type="submit">Sign in</button>
      <p class="muted">The token stays in this browser tab only (sessionStorage).</p>
    </form>
  );
}
