import { render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { errorText, getAnalyses, getAnalysis, getHealth, getMachine, putMachine, uploadPhoto, uploadReference } from './api';
import { connectEvents, type FeedState } from './events';
import type { AnalysisListItem, Health, Machine, MachineView, Results } from './schemas';
import { applyFrame, fromView, ms, stepLabel, type Analysis } from './timeline';
import { Teach } from './teach';
import './styles.css';

interface Upload {
  key: number;
  name: string;
  progress: number;
  analysisId?: string;
  error?: { code: string; message: string };
}

const MACHINE_TYPES = ['excavator', 'wheel_loader', 'backhoe_loader', 'bulldozer', 'crane', 'dump_truck', 'forklift', 'grader', 'roller', 'skid_steer', 'telehandler', 'tractor', 'aerial_lift'];
const pretty = (s: string) => s.replace(/_/g, ' ');
const pct = (x: number) => `${Math.round(x * 100)} %`;
const when = (iso: string) => new Date(iso).toLocaleString();

function App() {
  const [analyses, setAnalyses] = useState<Map<string, Analysis>>(new Map());
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [opened, setOpened] = useState<string[]>([]); // analyses opened from history / seen live
  const [feed, setFeed] = useState<FeedState>('connecting');
  const [history, setHistory] = useState<AnalysisListItem[]>([]);
  const [historyError, setHistoryError] = useState<string>();
  const analysesRef = useRef(analyses);
  analysesRef.current = analyses;
  const nextKey = useRef(1);

  const upsert = useCallback((a: Analysis) => {
    setAnalyses((m) => new Map(m).set(a.id, a));
  }, []);

  const loadHistory = useCallback(async () => {
    try {
      setHistory((await getAnalyses(20)).analyses);
      setHistoryError(undefined);
    } catch (err) {
      setHistoryError(errorText(err).message);
    }
  }, []);

  const refresh = useCallback(async (id: string) => {
    try {
      const v = await getAnalysis(id);
      setAnalyses((m) => new Map(m).set(id, fromView(v, m.get(id))));
    } catch {
      /* not there yet: live events will fill it in */
    }
  }, []);

  useEffect(
    () =>
      connectEvents({
        onState: setFeed,
        onFrame: (json) => {
          const id = (json as { subject?: unknown }).subject;
          if (typeof id !== 'string') return;
          setAnalyses((m) => {
            const next = applyFrame(m.get(id), json);
            if (!next) return m;
            return new Map(m).set(id, next);
          });
          setOpened((o) => (o.includes(id) ? o : [id, ...o].slice(0, 30)));
        },
        onOpen: () => {
          // After a (re)connect: reload what may have been missed.
          for (const a of analysesRef.current.values()) if (a.status === 'running' || a.status === 'stored') void refresh(a.id);
          void loadHistory();
        },
      }),
    [loadHistory, refresh],
  );

  const startUploads = useCallback(
    (files: File[]) => {
      for (const file of files) {
        const key = nextKey.current++;
        setUploads((u) => [{ key, name: file.name || 'photo', progress: 0 }, ...u].slice(0, 30));
        const patch = (p: Partial<Upload>) => setUploads((u) => u.map((x) => (x.key === key ? { ...x, ...p } : x)));
        uploadPhoto(file, (f) => patch({ progress: f }))
          .then(({ analysisId }) => {
            patch({ progress: 1, analysisId });
            setOpened((o) => [analysisId, ...o.filter((x) => x !== analysisId)]);
            if (!analysesRef.current.has(analysisId)) upsert({ id: analysisId, status: 'stored', items: [], updatedAt: new Date().toISOString() });
          })
          .catch((err: unknown) => patch({ error: errorText(err) }));
      }
    },
    [upsert],
  );

  const open = useCallback(
    (id: string) => {
      setOpened((o) => [id, ...o.filter((x) => x !== id)]);
      void refresh(id);
      setTimeout(() => document.getElementById(`a-${id}`)?.focus(), 50);
    },
    [refresh],
  );

  // Finished analyses reload the history (the store commits asynchronously: once now, once a bit later).
  const finished = [...analyses.values()].filter((a) => a.status === 'completed' || a.status === 'failed').length;
  useEffect(() => {
    if (finished === 0) return;
    void loadHistory();
    const later = setTimeout(() => void loadHistory(), 1500);
    return () => clearTimeout(later);
  }, [finished, loadHistory]);
  // Live analyses not yet in the loaded history are shown first; live status wins.
  const known = new Set(history.map((i) => i.analysisId));
  const historyItems: AnalysisListItem[] = [
    ...[...analyses.values()].filter((a) => !known.has(a.id) && a.status !== 'stored').map((a) => ({ analysisId: a.id, status: a.status, createdAt: a.updatedAt, updatedAt: a.updatedAt })).reverse(),
    ...history.map((i) => ({ ...i, status: analyses.get(i.analysisId)?.status ?? i.status })),
  ];

  const linked = new Set(uploads.map((u) => u.analysisId).filter(Boolean));
  const liveOnly = opened.filter((id) => !linked.has(id));

  return (
    <>
      <a class="skip" href="#capture">Skip to photo upload</a>
      <header class="top">
        <h1>TU Edge Analysis</h1>
        <span class={`feed feed-${feed}`} role="status">
          {feed === 'live' ? 'Live' : feed === 'connecting' ? 'Connecting…' : 'Reconnecting to live events…'}
        </span>
        <nav aria-label="Sections">
          <a href="#capture">Photo</a>
          <a href="#history">History</a>
          <a href="#health">Gateway</a>
          <a href="#machine">Machine</a>
        </nav>
      </header>
      <HealthBanner />
      <main>
        <Capture onFiles={startUploads} />
        <section aria-labelledby="live-h">
          <h2 id="live-h">Analyses</h2>
          {uploads.length === 0 && liveOnly.length === 0 && <p class="muted">No photo yet. Take one above; its analysis appears here live.</p>}
          {uploads.map((u) => (
            <AnalysisCard key={`u${u.key}`} upload={u} analysis={u.analysisId ? analyses.get(u.analysisId) : undefined} />
          ))}
          {liveOnly.map((id) => (
            <AnalysisCard key={id} analysis={analyses.get(id)} id={id} />
          ))}
        </section>
        <History items={historyItems} error={historyError} onOpen={open} onReload={loadHistory} />
        <HealthPanel />
        <MachinePanel />
      </main>
    </>
  );
}

function Capture({ onFiles }: { onFiles: (f: File[]) => void }) {
  const [over, setOver] = useState(false);
  const take = (e: Event) => {
    const input = e.currentTarget as HTMLInputElement;
    if (input.files?.length) onFiles([...input.files]);
    input.value = '';
  };
  return (
    <section
      id="capture"
      tabIndex={-1}
      aria-labelledby="capture-h"
      class={`capture${over ? ' over' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        const files = [...(e.dataTransfer?.files ?? [])];
        if (files.length) onFiles(files);
      }}
    >
      <h2 id="capture-h">Photo of the machine</h2>
      <div class="row">
        <label class="big-button">
          <input type="file" accept="image/*" capture="environment" onChange={take} />
          Take photo
        </label>
        <label class="big-button secondary">
          <input type="file" accept="image/jpeg,image/png,image/webp" multiple onChange={take} />
          Choose photos
        </label>
      </div>
      <p class="muted">Or drop one or several photos here (JPEG, PNG or WebP).</p>
    </section>
  );
}

const STATUS_TEXT: Record<string, string> = { stored: 'Waiting', running: 'Running', completed: 'Completed', failed: 'Failed' };

function AnalysisCard({ upload, analysis, id }: { upload?: Upload; analysis?: Analysis | undefined; id?: string }) {
  const aid = upload?.analysisId ?? id ?? '';
  const state = upload?.error ? 'rejected' : analysis ? analysis.status : upload && !upload.analysisId ? 'uploading' : 'stored';
  const label = state === 'rejected' ? 'Rejected' : state === 'uploading' ? 'Uploading' : (STATUS_TEXT[state] ?? state);
  return (
    <article class={`card state-${state}`} id={aid ? `a-${aid}` : undefined} tabIndex={-1} aria-label={`Analysis ${upload?.name ?? aid}: ${label}`}>
      <header class="card-h">
        <h3>{upload?.name ?? `Analysis ${aid.slice(0, 10)}`}</h3>
        <span class={`badge badge-${state}`}>{label}</span>
      </header>
      {upload && !upload.analysisId && !upload.error && (
        <div>
          <label class="muted">
            Upload {pct(upload.progress)}
            <progress max={1} value={upload.progress} aria-label={`Upload progress of ${upload.name}`} />
          </label>
        </div>
      )}
      {upload?.error && (
        <p class="error" role="alert">
          <strong>The gateway refused this photo:</strong> {upload.error.message} <code>{upload.error.code}</code>
        </p>
      )}
      {aid && (
        <ol class="timeline" aria-live="polite" aria-label="Timeline">
          {analysis?.items.map((i) => (
            <li key={i.key} class={`t-${i.kind}`}>
              <time dateTime={i.time}>{new Date(i.time).toLocaleTimeString()}</time> <span>{i.text}</span>
            </li>
          ))}
          {(!analysis || analysis.items.length === 0) && <li class="t-info">Accepted; waiting for the analysis to start…</li>}
        </ol>
      )}
      {analysis?.status === 'failed' && analysis.failure && (
        <p class="error" role="alert">
          <strong>Analysis failed at {stepLabel(analysis.failure.step)}:</strong> {analysis.failure.reason.message} <code>{analysis.failure.reason.code}</code>
          {analysis.failure.reason.retryable ? ' Trying again with a new photo may help.' : ''}
        </p>
      )}
      {analysis && (analysis.status === 'completed' || analysis.status === 'failed') && <ResultCard a={analysis} />}
    </article>
  );
}

function ResultCard({ a }: { a: Analysis }) {
  const r: Results = a.results ?? {};
  const rec = r.recognition;
  const cmp = r.comparison;
  const meta = r.metadata;
  const gps = meta?.exif.gps;
  const camera = meta?.exif.camera && [meta.exif.camera.make, meta.exif.camera.model].filter(Boolean).join(' ');
  return (
    <section class="result" aria-label="Result">
      {a.image?.thumbnail && <img class="thumb" src={`data:image/jpeg;base64,${a.image.thumbnail}`} alt="Thumbnail of the analysed photo" width={160} />}
      <dl>
        <dt>Machine type</dt>
        <dd class="machine-type" data-testid="machine-type">
          {rec ? (
            <>
              {/* No confidence for 'unknown': a percentage next to "unknown" reads as certainty about a type. */}
              <strong>{pretty(rec.machineType)}</strong>
              {rec.machineType !== 'unknown' && <> · {pct(rec.confidence)} confidence</>}
              {rec.unknownReason && <span class="muted"> ({rec.unknownReason})</span>}
              {rec.topK.length > 0 && (
                <span class="muted">
                  {' '}
                  · {rec.machineType === 'unknown' ? 'closest' : 'alternatives'}:{' '}
                  {rec.topK
                    .filter((t) => t.label !== rec.machineType)
                    .slice(0, 3)
                    .map((t) => `${pretty(t.label)} ${pct(t.score)}`)
                    .join(', ')}
                </span>
              )}
            </>
          ) : (
            'not recognised'
          )}
        </dd>
        {cmp && (
          <>
            <dt>Comparison</dt>
            <dd>
              <span class={`verdict verdict-${cmp.verdict}`}>{cmp.verdict === 'match' ? 'Matches' : cmp.verdict === 'mismatch' ? 'Does NOT match' : 'Cannot tell'}</span> the registered machine
              <ul class="scores">
                <li>type confidence {pct(cmp.scores.typeConfidence)}</li>
                <li>best similarity {cmp.scores.bestSimilarity === null ? '—' : cmp.scores.bestSimilarity.toFixed(2)}{cmp.bestMatch ? ` (${cmp.bestMatch.source})` : ''}</li>
                {cmp.typeCheck.registeredType && (
                  <li>
                    registered {pretty(cmp.typeCheck.registeredType)}, seen {pretty(cmp.typeCheck.recognizedType)}
                  </li>
                )}
                {cmp.nearDuplicate.duplicate && <li>near-duplicate of an earlier photo</li>}
                {cmp.reasons.map((x) => (
                  <li key={x}>{x}</li>
                ))}
              </ul>
            </dd>
          </>
        )}
        {meta && (
          <>
            <dt>Captured</dt>
            <dd>{meta.exif.captureTime ? when(meta.exif.captureTime) : 'no capture time in the photo'}</dd>
            <dt>Position</dt>
            <dd>
              {gps ? (
                <a href={`https://www.openstreetmap.org/?mlat=${gps.latitude}&mlon=${gps.longitude}#map=17/${gps.latitude}/${gps.longitude}`} target="_blank" rel="noopener noreferrer">
                  {gps.latitude.toFixed(5)}, {gps.longitude.toFixed(5)} (map)
                </a>
              ) : (
                'no GPS in the photo'
              )}
            </dd>
            <dt>Camera</dt>
            <dd>{camera || 'unknown'}</dd>
            <dt>Photo</dt>
            <dd>
              {meta.quality.width}×{meta.quality.height} ({meta.quality.megapixels.toFixed(1)} MP), {meta.category}, quality {meta.record.photoQuality}
            </dd>
            {meta.warnings.length > 0 && (
              <>
                <dt>Warnings</dt>
                <dd class="warn">{meta.warnings.map(pretty).join(', ')}</dd>
              </>
            )}
          </>
        )}
        {a.steps && (
          <>
            <dt>Steps</dt>
            <dd>
              {a.steps.map((s) => `${stepLabel(s.step)} ${s.status}${s.durationMs !== undefined ? ` ${ms(s.durationMs)}` : ''}${s.attempts > 1 ? ` (${s.attempts} attempts)` : ''}`).join(' · ')}
            </dd>
          </>
        )}
      </dl>
      {rec && <Teach analysisId={a.id} recognised={rec.machineType} />}
    </section>
  );
}

function History({ items, error, onOpen, onReload }: { items: AnalysisListItem[]; error: string | undefined; onOpen: (id: string) => void; onReload: () => void }) {
  return (
    <section id="history" aria-labelledby="history-h">
      <h2 id="history-h">Recent analyses</h2>
      <button type="button" class="small-button" onClick={onReload}>
        Reload history
      </button>
      {error && (
        <p class="error" role="alert">
          Could not load the history: {error}
        </p>
      )}
      {items.length === 0 && !error && <p class="muted">None yet.</p>}
      <ul class="history">
        {items.map((i) => (
          <li key={i.analysisId}>
            <button type="button" class="history-item" onClick={() => onOpen(i.analysisId)} aria-label={`Open analysis ${i.analysisId} (${i.status}, ${when(i.createdAt)})`}>
              <span class={`badge badge-${i.status}`}>{STATUS_TEXT[i.status] ?? i.status}</span>
              <span>{when(i.createdAt)}</span>
              <code>{i.analysisId.slice(0, 10)}</code>
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Health, polled every 5 s; shared by the banner and the panel. */
let healthCache: { h?: Health; err?: string } = {};
const healthSubs = new Set<() => void>();
async function pollHealth() {
  try {
    healthCache = { h: await getHealth() };
  } catch (err) {
    healthCache = { ...(healthCache.h ? { h: healthCache.h } : {}), err: errorText(err).message };
  }
  for (const s of healthSubs) s();
}
function useHealth() {
  const [, force] = useState(0);
  useEffect(() => {
    const sub = () => force((n) => n + 1);
    healthSubs.add(sub);
    if (healthSubs.size === 1) void pollHealth();
    return () => void healthSubs.delete(sub);
  }, []);
  return healthCache;
}
setInterval(() => void pollHealth(), 5000);

function HealthBanner() {
  const { h, err } = useHealth();
  const msgs: string[] = [];
  if (err) msgs.push(`Gateway not reachable: ${err}`);
  if (h && !h.broker.up) msgs.push('The gateway message broker is down: analyses cannot run.');
  if (h) for (const [name, s] of Object.entries(h.services)) if (!s.up) msgs.push(`${name} (${stepLabel(s.step)}) is not running: analyses will fail at that step.`);
  const u = h?.uplink;
  if (u && u.state !== 'disabled' && u.state !== 'online')
    msgs.push(`Cloud relay unreachable (${u.state}${u.lastError ? `: ${u.lastError.message}` : ''}). Results are kept on the gateway (${u.queueDepth ?? 0} waiting) and sent when the relay is back.`);
  if (u?.full) msgs.push('The uplink outbox is full: new events are being dropped or refused.');
  if (h?.model.state === 'loaded' && !h.model.head)
    msgs.push(
      'No machine-type model (head) is installed: the gateway cannot tell excavators, loaders, dozers and the other machine types apart. Only forklifts, cranes and tractors are guessed; every other photo shows type "unknown". Photos are still stored and compared. Ask your administrator to install the default head.',
    );
  if (!msgs.length) return null;
  return (
    <div class="banner" role="alert">
      {msgs.map((m) => (
        <p key={m}>{m}</p>
      ))}
    </div>
  );
}

function HealthPanel() {
  const { h, err } = useHealth();
  return (
    <section id="health" aria-labelledby="health-h">
      <h2 id="health-h">Gateway health</h2>
      {err && !h && <p class="error">{err}</p>}
      {h && (
        <dl class="health">
          <dt>Gateway</dt>
          <dd>
            {h.gatewayId} · <span class={`badge badge-${h.status === 'ok' ? 'completed' : 'failed'}`}>{h.status}</span> · up {Math.round(h.uptimeS / 60)} min
          </dd>
          <dt>Broker</dt>
          <dd>{h.broker.up ? `up, ${h.broker.clients} clients` : 'DOWN'}</dd>
          {Object.entries(h.services).map(([name, s]) => (
            <>
              <dt key={`${name}-t`}>{stepLabel(s.step)}</dt>
              <dd key={`${name}-d`}>
                {s.up ? 'up' : 'DOWN'} · {name}
                {s.inProcess ? ' (in agent)' : ''}
                {s.instances.length > 0 && (
                  <ul>
                    {s.instances.map((i) => (
                      <li key={i.instanceId}>
                        <code>{i.instanceId}</code> · {i.inflight} in flight
                      </li>
                    ))}
                  </ul>
                )}
              </dd>
            </>
          ))}
          <dt>Model</dt>
          <dd>
            {h.model.state === 'loaded' ? `${h.model.id ?? ''} ${h.model.version ?? ''} on ${h.model.backend ?? '?'}${h.model.head ? `, head ${h.model.head.id}` : ', no trained head'}` : h.model.state}
          </dd>
          <dt>Queue</dt>
          <dd>
            {h.orchestrator.running} running, {h.orchestrator.queued} waiting
          </dd>
          <dt>Cloud uplink</dt>
          <dd>
            {h.uplink.state === 'disabled'
              ? `disabled${h.uplink.reason ? ` (${h.uplink.reason})` : ''}`
              : `${h.uplink.state} · ${h.uplink.queueDepth ?? 0} queued${h.uplink.oldestUndeliveredAgeMs ? `, oldest ${ms(h.uplink.oldestUndeliveredAgeMs)}` : ''}${h.uplink.lastDeliveryAt ? ` · last sent ${when(h.uplink.lastDeliveryAt)}` : ''}`}
            {h.uplink.lastError && <p class="error">Last error: {h.uplink.lastError.message}</p>}
          </dd>
        </dl>
      )}
    </section>
  );
}

const FIELDS: [keyof Machine, string, string][] = [
  ['type', 'Machine type', 'e.g. excavator'],
  ['brand', 'Brand', 'e.g. Liebherr'],
  ['model', 'Model', 'e.g. R 926'],
  ['serialNumber', 'Serial number', 'from the nameplate'],
  ['name', 'Name', 'e.g. Site 4 excavator'],
];

function MachinePanel() {
  const [view, setView] = useState<MachineView>();
  const [form, setForm] = useState<Machine>({});
  const [msg, setMsg] = useState<{ ok: boolean; text: string }>();
  const [busy, setBusy] = useState(false);
  const [refProgress, setRefProgress] = useState<string>();
  useEffect(() => {
    getMachine()
      .then((v) => {
        setView(v);
        setForm(v.machine ?? {});
      })
      .catch((err: unknown) => setMsg({ ok: false, text: `Could not load the machine: ${errorText(err).message}` }));
  }, []);
  const save = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const clean = Object.fromEntries(Object.entries(form).filter(([, v]) => typeof v === 'string' && v.trim() !== '').map(([k, v]) => [k, (v as string).trim()])) as Machine;
      const v = await putMachine(clean);
      setView(v);
      setMsg({ ok: true, text: 'Machine saved.' });
    } catch (err) {
      const t = errorText(err);
      setMsg({ ok: false, text: `Not saved: ${t.message} (${t.code})` });
    } finally {
      setBusy(false);
    }
  };
  const addRefs = async (e: Event) => {
    const input = e.currentTarget as HTMLInputElement;
    const files = [...(input.files ?? [])];
    input.value = '';
    for (const f of files) {
      try {
        setRefProgress(`${f.name}: 0 %`);
        const r = await uploadReference(f, (p) => setRefProgress(`${f.name}: ${pct(p)}`));
        setMsg({ ok: true, text: `Reference photo ${f.name} ${r.replaced ? 'replaced an older one' : 'added'} (${r.count} in total).` });
      } catch (err) {
        const t = errorText(err);
        setMsg({ ok: false, text: `Reference photo ${f.name} refused: ${t.message} (${t.code})` });
      }
    }
    setRefProgress(undefined);
    try {
      setView(await getMachine());
    } catch {
      /* shown on next load */
    }
  };
  return (
    <section id="machine" aria-labelledby="machine-h">
      <h2 id="machine-h">Registered machine</h2>
      <form onSubmit={save} class="machine-form">
        {FIELDS.map(([key, label, ph]) => (
          <label key={key}>
            {label}
            <input
              name={key}
              value={form[key] ?? ''}
              placeholder={ph}
              maxLength={key === 'name' ? 256 : key === 'type' ? 64 : 128}
              list={key === 'type' ? 'machine-types' : undefined}
              autoComplete="off"
              onInput={(e) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value })}
            />
          </label>
        ))}
        <datalist id="machine-types">
          {MACHINE_TYPES.map((t) => (
            <option key={t} value={t} />
          ))}
        </datalist>
        <button type="submit" class="big-button" disabled={busy}>
          {busy ? 'Saving…' : 'Save machine'}
        </button>
      </form>
      <h3>Reference photos</h3>
      <label class="big-button secondary">
        <input type="file" accept="image/jpeg,image/png,image/webp" multiple onChange={addRefs} />
        Add reference photos
      </label>
      {refProgress && <p role="status">Uploading {refProgress}</p>}
      {msg && (
        <p class={msg.ok ? 'ok' : 'error'} role={msg.ok ? 'status' : 'alert'}>
          {msg.text}
        </p>
      )}
      <p class="muted">{view ? `${view.references.length} reference photo(s) stored.` : ''}</p>
    </section>
  );
}

render(<App />, document.getElementById('app')!);
