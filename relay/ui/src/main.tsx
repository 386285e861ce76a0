import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { createClient } from 'graphql-ws';
import * as z from 'zod/mini';
import { AccuracyPanel } from './accuracy';

const TOKEN_KEY = 'tu.dashboard.token';
const str = z.string();
const ns = z.optional(z.nullable(str));
const gateway = z.object({ id: str, name: ns, online: z.boolean(), lastSeen: ns });
const machine = z.object({ id: str, gatewayId: str, type: ns, brand: ns, model: ns, serialNumber: ns, name: ns, lastSeen: ns, latestThumbnail: ns });
const analysis = z.object({ id: str, gatewayId: str, machineId: str, status: str, failure: z.optional(z.unknown()), results: z.optional(z.unknown()), startedAt: ns, endedAt: ns });
const feedEvent = z.object({ type: str, analysisId: str, gatewayId: str, time: str, data: z.optional(z.unknown()) });
type Gateway = z.infer<typeof gateway>;
type Machine = z.infer<typeof machine>;
type Analysis = z.infer<typeof analysis>;
type FeedEvent = z.infer<typeof feedEvent>;
const graphqlErrors = z.object({
  errors: z.optional(z.array(z.object({ message: str }))),
  data: z.optional(z.nullable(z.record(str, z.unknown()))),
  // the relay's own errors (401 before GraphQL runs): { error: { code, message } }
  error: z.optional(z.object({ code: str, message: str })),
});
/** The relay refused the token (401 / UNAUTHENTICATED): the dashboard signs out with this message. */
class AuthError extends Error {}

async function gql<T>(token: string, query: string, variables: Record<string, unknown>, pick: (d: Record<string, unknown>) => T): Promise<T> {
  let res: Response;
  try {
    res = await fetch('/graphql', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
  } catch {
    throw new Error('The relay does not answer.');
  }
  const body = graphqlErrors.safeParse(await res.json().catch(() => ({})));
  if (!body.success) throw new Error(`Unexpected answer from the relay (${res.status}).`);
  if (res.status === 401 || body.data.error?.code === 'UNAUTHENTICATED') throw new AuthError(body.data.error?.message ?? 'the token was refused');
  if (body.data.error) throw new Error(`${body.data.error.message} [${body.data.error.code}]`);
  if (body.data.errors?.length) throw new Error(body.data.errors.map((e) => e.message).join('; '));
  if (!res.ok || !body.data.data) throw new Error(`The relay answered ${res.status}.`);
  return pick(body.data.data);
}
const nodes = <T,>(schema: z.ZodMiniType<T>, v: unknown): T[] => {
  const r = z.object({ nodes: z.array(z.unknown()) }).safeParse(v);
  return r.success ? r.data.nodes.flatMap((n) => { const p = schema.safeParse(n); return p.success ? [p.data] : []; }) : [];
};
// A failure as it comes: analysis.failed data ({ failedStep, reason }), a step's *.failed data
// ({ error }), or a stored analysis' failure ({ failedStep, code, message }).
const why = z.object({ code: str, message: str });
const failureShape = z.object({ failedStep: z.optional(str), reason: z.optional(why), error: z.optional(why), code: z.optional(str), message: z.optional(str) });
const reason = (failure: unknown): string => {
  const r = failureShape.safeParse(failure);
  if (!r.success) return '';
  const f = r.data;
  const w = f.reason ?? f.error ?? (f.code && f.message ? { code: f.code, message: f.message } : undefined);
  return w ? `${f.failedStep ? `${f.failedStep}: ` : ''}${w.message} [${w.code}]` : '';
};
const machineType = (results: unknown): string => {
  const r = z.object({ recognition: z.object({ machineType: str, confidence: z.number() }) }).safeParse(results);
  if (!r.success) return '';
  const { machineType: t, confidence } = r.data.recognition;
  return t === 'unknown' ? 'not recognised as a machine' : `${t.replace(/_/g, ' ')} (${Math.round(confidence * 100)} %)`;
};

function SignIn({ onToken }: { onToken: (t: string) => void }) {
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

function Dashboard({ token, onSignOut }: { token: string; onSignOut: (msg?: string) => void }) {
  const [gateways, setGateways] = useState<Gateway[]>([]);
  const [machines, setMachines] = useState<Machine[]>([]);
  const [search, setSearch] = useState('');
  const [type, setType] = useState('');
  // every type seen so far (a filtered list must not shrink the filter's own options)
  const [types, setTypes] = useState<string[]>([]);
  const [selected, setSelected] = useState<string>();
  const [detail, setDetail] = useState<{ m: Machine; analyses: Analysis[] }>();
  const [feed, setFeed] = useState<FeedEvent[]>([]);
  const [failures, setFailures] = useState<Analysis[]>([]);
  const [error, setError] = useState<string>();
  const [live, setLive] = useState('connecting');
  // Bumped when the relay has stored a finished analysis: machines, detail and failures reload.
  const [stored, setStored] = useState(0);
  const [labelled, setLabelled] = useState(0);

  const fail = (err: unknown) => {
    if (err instanceof AuthError) onSignOut(`The relay refused this token (${err.message}). Sign in again with a valid token.`);
    else setError(err instanceof Error ? err.message : String(err));
  };
  // The relay pushes an event before it stores it: wait until the analysis is stored as
  // `status` (a few quick polls), then reload what depends on it.
  const whenStored = async (id: string, status: string) => {
    for (let i = 0, delay = 50; i < 12; i++, delay = Math.min(delay * 2, 2000)) {
      const s = await gql(token, 'query($id: ID!) { analysis(id: $id) { status } }', { id }, (d) => z.object({ status: str }).safeParse(d['analysis']));
      if (s.success && s.data.status === status) break;
      await new Promise((r) => setTimeout(r, delay));
    }
    setStored((n) => n + 1);
  };
  const loadGateways = () =>
    gql(token, 'query { gateways(first: 100) { nodes { id name online lastSeen } } analyses(first: 20, status: failed) { nodes { id gatewayId machineId status failure startedAt endedAt } } }', {}, (d) => ({ g: nodes(gateway, d['gateways']), f: nodes(analysis, d['analyses']) }))
      .then(({ g, f }) => { setGateways(g); setFailures(f); setError(undefined); })
      .catch(fail);
  useEffect(() => { void loadGateways(); const i = setInterval(() => void loadGateways(), 10_000); return () => clearInterval(i); }, [token, stored]);
  useEffect(() => {
    gql(token, 'query($s: String, $t: String) { machines(first: 100, search: $s, type: $t) { nodes { id gatewayId type brand model serialNumber name lastSeen latestThumbnail } } }', { s: search || null, t: type || null }, (d) => nodes(machine, d['machines']))
      .then((ms) => { setMachines(ms); setTypes((ts) => [...new Set([...ts, ...ms.map((m) => m.type).filter((t): t is string => !!t)])].sort()); })
      .catch(fail);
  }, [token, search, type, stored]);
  useEffect(() => {
    if (!selected) return setDetail(undefined);
    gql(token, 'query($id: ID!) { machine(id: $id) { id gatewayId type brand model serialNumber name lastSeen latestThumbnail analyses(first: 20) { nodes { id gatewayId machineId status failure results startedAt endedAt } } } }', { id: selected }, (d) => {
      const m = machine.safeParse(d['machine']);
      const a = z.object({ analyses: z.unknown() }).safeParse(d['machine']);
      return m.success ? { m: m.data, analyses: a.success ? nodes(analysis, a.data.analyses) : [] } : undefined;
    })
      .then(setDetail)
      .catch(fail);
  }, [token, selected, stored]);
  useEffect(() => {
    const client = createClient({ url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 1e9, on: { connected: () => setLive('live'), closed: () => setLive('reconnecting') } });
    const stop = client.subscribe(
      { query: 'subscription { analysisEvents { type analysisId gatewayId time data } }' },
      {
        next: (msg) => {
          const e = feedEvent.safeParse((msg.data as Record<string, unknown> | null | undefined)?.['analysisEvents']);
          if (!e.success) return;
          setFeed((f) => [e.data, ...f].slice(0, 100));
          if (e.data.type === 'recognition.labelled') setLabelled((n) => n + 1);
          if (e.data.type === 'analysis.completed' || e.data.type === 'analysis.failed') whenStored(e.data.analysisId, e.data.type.slice('analysis.'.length)).catch(fail);
        },
        error: (err) => {
          setLive('off');
          const close = z.object({ code: z.number(), reason: z.optional(str) }).safeParse(err);
          fail(new Error(`The live feed stopped: ${err instanceof Error ? err.message : Array.isArray(err) ? err.map((x: { message?: string }) => x.message).join('; ') : close.success ? `connection closed (${close.data.code}${close.data.reason ? ` ${close.data.reason}` : ''})` : 'connection closed'}. Reload the page to retry.`));
        },
        complete: () => undefined,
      },
    );
    return () => { stop(); void client.dispose(); };
  }, [token]);
  return (
    <>
      <header class="top">
        <h1>TU Edge Analysis · Cloud</h1>
        <span role="status" class={`feed feed-${live}`}>{live === 'live' ? 'Live' : live === 'off' ? 'Feed stopped' : live === 'connecting' ? 'Connecting…' : 'Reconnecting…'}</span>
        <button type="button" onClick={() => onSignOut()}>Sign out</button>
      </header>
      <main>
        {error && <p class="error" role="alert">{error}</p>}
        <section aria-labelledby="gw-h">
          <h2 id="gw-h">Gateways</h2>
          <ul class="gateways">
            {gateways.map((g) => (
              <li key={g.id}><span class={`badge ${g.online ? 'ok' : 'bad'}`}>{g.online ? 'online' : 'offline'}</span> <strong>{g.name ?? g.id}</strong> <code>{g.id}</code>{g.lastSeen && <span class="muted"> · last seen {new Date(g.lastSeen).toLocaleString()}</span>}</li>
            ))}
            {gateways.length === 0 && <li class="muted">No gateway for this tenant.</li>}
          </ul>
        </section>
        <section aria-labelledby="feed-h">
          <h2 id="feed-h">Live feed</h2>
          <ol class="feed-list" aria-live="polite" aria-label="Live analysis events" tabIndex={0}>
            {feed.map((e, i) => (
              <li key={`${e.analysisId}-${e.type}-${i}`} class={e.type.endsWith('failed') ? 'bad-text' : ''}>
                <time>{new Date(e.time).toLocaleTimeString()}</time> <code>{e.gatewayId}</code> {e.type} <code>{e.analysisId}</code> {e.type === 'analysis.completed' ? machineType((e.data as Record<string, unknown> | undefined)?.['results']) : ''} {reason(e.data)}
              </li>
            ))}
            {feed.length === 0 && <li class="muted">Waiting for events…</li>}
          </ol>
        </section>
        <section aria-labelledby="m-h">
          <h2 id="m-h">Machines</h2>
          <div class="filters">
            <div><label for="m-search">Search</label>
            <input id="m-search" type="search" placeholder="name, brand, model, serial" value={search} onInput={(e) => setSearch((e.currentTarget as HTMLInputElement).value)} /></div>
            <div><label for="m-type">Type</label>
            <select id="m-type" value={type} onChange={(e) => setType((e.currentTarget as HTMLSelectElement).value)}><option value="">all</option>{types.map((t) => <option key={t} value={t}>{t}</option>)}</select></div>
          </div>
          <div class="table-wrap" role="region" aria-label="Machines table" tabIndex={0}>
          <table>
            <thead><tr><th>Photo</th><th>Name</th><th>Type</th><th>Brand / model</th><th>Serial</th><th>Gateway</th><th>Last seen</th></tr></thead>
            <tbody>
              {machines.map((m) => (
                <tr key={m.id}>
                  <td>{m.latestThumbnail && <img src={`data:image/jpeg;base64,${m.latestThumbnail}`} alt={`Latest photo of ${m.name ?? m.id}`} width={64} />}</td>
                  <td><button type="button" class="link" onClick={() => setSelected(m.id)}>{m.name ?? m.id}</button></td>
                  <td>{m.type ?? '—'}</td><td>{[m.brand, m.model].filter(Boolean).join(' ') || '—'}</td><td>{m.serialNumber ?? '—'}</td><td><code>{m.gatewayId}</code></td><td>{m.lastSeen ? new Date(m.lastSeen).toLocaleString() : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
          </div>
          {detail && (
            <article class="card" aria-label={`Machine ${detail.m.name ?? detail.m.id}`}>
              <h3>{detail.m.name ?? detail.m.id}</h3>
              {detail.m.latestThumbnail && <img src={`data:image/jpeg;base64,${detail.m.latestThumbnail}`} alt="Latest photo" width={200} />}
              <ul>
                {detail.analyses.map((a) => (
                  <li key={a.id}><span class={`badge ${a.status === 'failed' ? 'bad' : 'ok'}`}>{a.status}</span> {a.startedAt ? new Date(a.startedAt).toLocaleString() : ''} {machineType(a.results)} {reason(a.failure)}</li>
                ))}
              </ul>
            </article>
          )}
        </section>
        <AccuracyPanel query={(q, v, pick) => gql(token, q, v, pick)} refresh={labelled} onError={fail} />
        <section aria-labelledby="f-h">
          <h2 id="f-h">Failures</h2>
          <ul>
            {failures.map((a) => (<li key={a.id} class="bad-text"><code>{a.gatewayId}</code> <code>{a.id}</code>: {reason(a.failure) || 'no reason recorded'}</li>))}
            {failures.length === 0 && <li class="muted">No failed analysis.</li>}
          </ul>
        </section>
      </main>
    </>
  );
}

function App() {
  const [token, setToken] = useState<string | null>(sessionStorage.getItem(TOKEN_KEY));
  const [msg, setMsg] = useState<string>();
  if (!token)
    return (
      <main>
        <h1>TU Edge Analysis · Cloud</h1>
        {msg && <p class="error" role="alert">{msg}</p>}
        <SignIn onToken={(t) => { sessionStorage.setItem(TOKEN_KEY, t); setMsg(undefined); setToken(t); }} />
      </main>
    );
  return <Dashboard token={token} onSignOut={(m) => { sessionStorage.removeItem(TOKEN_KEY); setMsg(m); setToken(null); }} />;
}

const style = document.createElement('style');
style.textContent = `:root{font:17px/1.45 system-ui,sans-serif;color:#000;background:#fff}body{margin:0}li,p,code{overflow-wrap:anywhere}.table-wrap{overflow-x:auto}main{max-width:1200px;margin:0 auto;padding:0 12px 40px}
.top{display:flex;gap:16px;align-items:center;background:#000;color:#fff;padding:8px 12px;flex-wrap:wrap}.top h1{font-size:1.2rem;margin:0}
h2{border-bottom:3px solid #000}button{min-height:48px;font:inherit;font-weight:700;padding:8px 16px;border:3px solid #000;border-radius:6px;background:#0038a8;color:#fff;cursor:pointer}
button.link{background:#fff;color:#0038a8;text-decoration:underline;border-color:transparent;padding-left:0;text-align:left}:focus-visible{outline:4px solid #ffbf00;outline-offset:2px}
label{display:grid;gap:4px;font-weight:700;margin:8px 0}textarea,input,select{font:inherit;min-height:48px;border:3px solid #000;border-radius:6px;padding:6px}
.filters{display:flex;gap:16px;flex-wrap:wrap}table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #000;padding:6px;text-align:left;vertical-align:middle}
.badge{font-weight:800;padding:2px 8px;border-radius:4px;color:#fff}.ok{background:#05570a}.bad{background:#a0001c}.bad-text{color:#a0001c;font-weight:600}
.error{color:#a0001c;font-weight:700;border-left:6px solid #a0001c;padding-left:10px}.muted{color:#333}.card{border:3px solid #000;border-radius:8px;padding:12px;margin:12px 0}
.feed{padding:2px 8px;border:2px solid #fff}.feed-live{background:#05570a}.feed-list{max-height:320px;overflow:auto;border-left:4px solid #000;list-style:none;padding-left:10px}code{background:#eee;padding:0 4px}`;
document.head.append(style);
render(<App />, document.getElementById('app')!);
