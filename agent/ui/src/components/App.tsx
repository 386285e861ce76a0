import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { canSendAgain, errorText, getAnalysis, UiError, uploadPhoto } from '../api';
import { signOut, type TokenInfo } from '../auth';
import { connectEvents, type FeedState } from '../events';
import { when } from '../format';
import { HealthContext, useHealthPoll } from '../hooks/useHealth';
import { useHistory } from '../hooks/useHistory';
import type { AnalysisListItem } from '../schemas';
import { applyFrame, fromView, type Analysis } from '../timeline';
import { AnalysisCard, type Load, type Upload } from './AnalysisCard';
import { Capture } from './Capture';
import { HealthBanner } from './HealthBanner';
import { HealthPanel } from './HealthPanel';
import { History } from './History';
import { MachinePanel } from './MachinePanel';

/**
 * How long after the gateway accepted a photo a 404 for its analysis means "not there yet" (the
 * orchestrator has not taken the upload event in: live events will fill the card in). Later, or
 * for an analysis opened from the history, a 404 is an answer to show like any other error.
 */
const NOT_THERE_YET_MS = 20_000;

const withLoad = (m: Map<string, Load>, id: string, p: Load): Map<string, Load> => new Map(m).set(id, { ...m.get(id), ...p });

/** Keeps the sticky header's real height in --header-h, so a revealed card scrolls to just below it whatever the header wraps to. */
function useHeaderHeight(ref: { current: HTMLElement | null }): void {
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const root = document.documentElement;
    const set = () => root.style.setProperty('--header-h', `${Math.ceil(el.getBoundingClientRect().height)}px`);
    set();
    const observer = new ResizeObserver(set);
    observer.observe(el);
    return () => {
      observer.disconnect();
      root.style.removeProperty('--header-h');
    };
  }, [ref]);
}

/** `session`: what the page's token says (null: not a readable JWT; the gateway still decides). */
export function App({ session }: { session: TokenInfo | null }) {
  const [analyses, setAnalyses] = useState<Map<string, Analysis>>(new Map());
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [opened, setOpened] = useState<string[]>([]); // analyses opened from history / seen live
  const [feed, setFeed] = useState<FeedState>('connecting');
  const { history, loaded: historyLoaded, error: historyError, reload: loadHistory } = useHistory(20);
  const health = useHealthPoll(5000);
  const analysesRef = useRef(analyses);
  analysesRef.current = analyses;
  const nextKey = useRef(1);
  const [loads, setLoads] = useState<Map<string, Load>>(new Map());
  /** When the gateway accepted each photo this page uploaded (performance.now(): monotonic). */
  const acceptedAt = useRef(new Map<string, number>());
  const header = useRef<HTMLElement>(null);
  useHeaderHeight(header);

  const upsert = useCallback((a: Analysis) => {
    setAnalyses((m) => new Map(m).set(a.id, a));
  }, []);

  const refresh = useCallback(async (id: string) => {
    setLoads((m) => withLoad(m, id, { loading: true }));
    try {
      const v = await getAnalysis(id);
      setAnalyses((m) => new Map(m).set(id, fromView(v, m.get(id))));
      setLoads((m) => withLoad(m, id, { loading: false, error: undefined }));
    } catch (err) {
      const accepted = acceptedAt.current.get(id);
      const notYet = err instanceof UiError && err.status === 404 && accepted !== undefined && performance.now() - accepted < NOT_THERE_YET_MS;
      // Not there yet: live events will fill it in. Anything else stays on the card, with a Retry.
      setLoads((m) => withLoad(m, id, { loading: false, error: notYet ? undefined : errorText(err) }));
    }
  }, []);

  // The history is the API's, not the live feed's: loaded at once, so a feed that cannot connect
  // (a proxy without WebSocket) does not leave it saying "None yet." over the gateway's analyses.
  useEffect(() => void loadHistory(), [loadHistory]);
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

  /** The photos whose upload may be sent again (by card key): a site's Wi-Fi drop must not mean choosing the photo again. */
  const files = useRef(new Map<number, File>());
  const send = useCallback(
    (key: number, file: File) => {
      const patch = (p: Partial<Upload>) => setUploads((u) => u.map((x) => (x.key === key ? { ...x, ...p } : x)));
      patch({ progress: 0, error: undefined, canRetry: false });
      uploadPhoto(file, (f) => patch({ progress: f }))
        .then(({ analysisId }) => {
          files.current.delete(key);
          acceptedAt.current.set(analysisId, performance.now());
          patch({ progress: 1, analysisId });
          setOpened((o) => [analysisId, ...o.filter((x) => x !== analysisId)]);
          if (!analysesRef.current.has(analysisId)) upsert({ id: analysisId, status: 'stored', items: [], updatedAt: new Date().toISOString() });
        })
        .catch((err: unknown) => {
          const again = canSendAgain(err);
          if (!again) files.current.delete(key);
          patch({ error: errorText(err), canRetry: again });
        });
    },
    [upsert],
  );
  const startUploads = useCallback(
    (chosen: File[]) => {
      for (const file of chosen) {
        const key = nextKey.current++;
        files.current.set(key, file);
        setUploads((u) => {
          const next = [{ key, name: file.name || 'photo', progress: 0 }, ...u];
          // Cards beyond the 30 shown keep no file.
          for (const old of next.slice(30)) files.current.delete(old.key);
          return next.slice(0, 30);
        });
        send(key, file);
      }
    },
    [send],
  );
  const sendAgain = useCallback(
    (key: number) => {
      const file = files.current.get(key);
      if (file) send(key, file);
    },
    [send],
  );

  const open = useCallback(
    ({ analysisId: id, fileName }: AnalysisListItem) => {
      if (fileName) setLoads((m) => withLoad(m, id, { fileName }));
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
  const uploadName = new Map(uploads.filter((u) => u.analysisId).map((u) => [u.analysisId, u.name]));
  const historyItems: AnalysisListItem[] = [
    ...[...analyses.values()]
      .filter((a) => !known.has(a.id) && a.status !== 'stored')
      .map((a) => {
        const fileName = a.fileName ?? uploadName.get(a.id);
        const machineType = a.results?.recognition?.machineType;
        return { analysisId: a.id, status: a.status, createdAt: a.updatedAt, updatedAt: a.updatedAt, ...(fileName ? { fileName } : {}), ...(machineType ? { machineType } : {}) };
      })
      .reverse(),
    ...history.map((i) => ({ ...i, status: analyses.get(i.analysisId)?.status ?? i.status })),
  ];

  const linked = new Set(uploads.map((u) => u.analysisId).filter(Boolean));
  const liveOnly = opened.filter((id) => !linked.has(id));

  return (
    <HealthContext.Provider value={health}>
      <a class="skip" href="#capture">
        Skip to photo upload
      </a>
      <header class="top" ref={header}>
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
        <span class="session" aria-label="Signed in">
          {session ? (
            <>
              {session.sub} · may {session.roles.join(', ')} · until {when(session.exp * 1000, { seconds: false })}
            </>
          ) : (
            'Signed in'
          )}
          <button class="small-button" type="button" onClick={() => signOut()}>
            Sign out
          </button>
        </span>
      </header>
      <HealthBanner />
      <main>
        <Capture onFiles={startUploads} />
        <section aria-labelledby="live-h">
          <h2 id="live-h">Analyses</h2>
          {uploads.length === 0 && liveOnly.length === 0 && <p class="muted">No photo yet. Take one above; its analysis appears here live.</p>}
          {uploads.map((u, i) => (
            <AnalysisCard
              key={`u${u.key}`}
              upload={u}
              analysis={u.analysisId ? analyses.get(u.analysisId) : undefined}
              load={u.analysisId ? loads.get(u.analysisId) : undefined}
              {...(u.analysisId ? { onRetry: () => void refresh(u.analysisId!) } : {})}
              onSendAgain={() => sendAgain(u.key)}
              reveal={i === 0}
            />
          ))}
          {liveOnly.map((id) => (
            <AnalysisCard key={id} analysis={analyses.get(id)} id={id} load={loads.get(id)} onRetry={() => void refresh(id)} />
          ))}
        </section>
        <History items={historyItems} loaded={historyLoaded} error={historyError} onOpen={open} onReload={loadHistory} />
        <HealthPanel />
        <MachinePanel />
      </main>
    </HealthContext.Provider>
  );
}
