import { render } from 'preact';
import { useState } from 'preact/hooks';
import { Dashboard } from './components/Dashboard';
import { SignIn } from './components/SignIn';

const TOKEN_KEY = 'tu.dashboard.token';

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
.flag{color:#a0001c;display:inline-block}.facts{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px}.facts dt{font-weight:700}.facts dd{margin:0}@media (max-width:600px){.facts{grid-template-columns:1fr}.facts dd{margin-bottom:8px}
table.cards thead{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}table.cards tr{display:block;border-bottom:3px solid #000;padding:6px 0}table.cards th[scope=row]{display:block;border:0;padding:3px 0}
table.cards td{display:grid;grid-template-columns:8em 1fr;gap:8px;border:0;padding:3px 0}table.cards td::before{content:attr(data-label);font-weight:700}table.cards td:has(>div:empty){display:none}table.cards.wide-names td{grid-template-columns:1fr 40%}table.cards.wide-names td::before{font-weight:400}}
.error{color:#a0001c;font-weight:700;border-left:6px solid #a0001c;padding-left:10px}.muted{color:#333}.card{border:3px solid #000;border-radius:8px;padding:12px;margin:12px 0}
.feed{padding:2px 8px;border:2px solid #fff}.feed-live{background:#05570a}.feed-degraded{background:#ffbf00;color:#000}.unknown{background:#4a4a4a}.feed-list{max-height:320px;overflow:auto;border-left:4px solid #000;list-style:none;padding-left:10px}code{background:#eee;padding:0 4px}`;
document.head.append(style);
render(<App />, document.getElementById('app')!);
