import { useEffect, useState } from 'preact/hooks';
import { errorText, getMachine, putMachine, uploadReference } from '../api';
import { count, num, pct } from '../format';
import type { Machine, MachineView } from '../schemas';
import { MACHINE_TYPES } from '@tu/shared/internal/machine-types';


/** The registered machine (PUT /api/v1/machine) and its reference photos. */
const FIELDS: [keyof Machine, string, string][] = [
  ['type', 'Machine type', 'e.g. excavator'],
  ['brand', 'Brand', 'e.g. Liebherr'],
  ['model', 'Model', 'e.g. R 926'],
  ['serialNumber', 'Serial number', 'from the nameplate'],
  ['name', 'Name', 'e.g. Site 4 excavator'],
];

export function MachinePanel() {
  const [view, setView] = useState<MachineView>();
  const [form, setForm] = useState<Machine>({});
  /**
   * Why the registered machine could not be loaded. Until it is, the form stays locked: a PUT
   * replaces the whole registration, so saving the empty form would erase the machine.
   */
  const [loadError, setLoadError] = useState<string>();
  const [loading, setLoading] = useState(true);
  const [msg, setMsg] = useState<{ ok: boolean; text: string }>();
  const [busy, setBusy] = useState(false);
  const [refProgress, setRefProgress] = useState<string>();
  // One line per photo of the last batch: a refusal must not vanish behind the next photo's success.
  const [refResults, setRefResults] = useState<{ ok: boolean; text: string }[]>([]);
  // Why the machine could not be reloaded after reference photos were added: the count shown is from before them.
  const [reloadError, setReloadError] = useState<string>();
  const reload = async () => {
    try {
      setView(await getMachine());
      setReloadError(undefined);
    } catch (err) {
      setReloadError(errorText(err).message);
    }
  };
  const load = async () => {
    setLoading(true);
    try {
      const v = await getMachine();
      setView(v);
      setForm(v.machine ?? {});
      setLoadError(undefined);
    } catch (err) {
      setLoadError(errorText(err).message);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => void load(), []);
  const locked = !view;
  const save = async (e: Event) => {
    e.preventDefault();
    if (locked) return;
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
    let added = 0;
    const results: { ok: boolean; text: string }[] = [];
    setRefResults([]);
    for (const f of files) {
      try {
        setRefProgress(`${f.name}: 0 %`);
        const r = await uploadReference(f, (p) => setRefProgress(`${f.name}: ${pct(p)}`));
        added++;
        results.push({ ok: true, text: `Reference photo ${f.name} ${r.replaced ? 'replaced an older one' : 'added'} (${num(r.count)} in total).` });
      } catch (err) {
        const t = errorText(err);
        results.push({ ok: false, text: `Reference photo ${f.name} refused: ${t.message} (${t.code})` });
      }
      setRefResults([...results]);
    }
    setRefProgress(undefined);
    if (added > 0) await reload();
  };
  return (
    <section id="machine" aria-labelledby="machine-h">
      <h2 id="machine-h">Registered machine</h2>
      {loadError && !view && (
        <p class="error" role="alert" data-testid="machine-load-error">
          Could not load the registered machine: {loadError}. The form stays locked until it is loaded, so saving cannot erase the registration.{' '}
          <button type="button" class="small-button" onClick={() => void load()} disabled={loading}>
            {loading ? 'Retrying…' : 'Retry'}
          </button>
        </p>
      )}
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
              disabled={locked}
              onInput={(e) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value })}
            />
          </label>
        ))}
        <datalist id="machine-types">
          {MACHINE_TYPES.map((t) => (
            <option key={t} value={t} />
          ))}
        </datalist>
        <button type="submit" class="big-button" disabled={busy || locked}>
          {busy ? 'Saving…' : 'Save machine'}
        </button>
      </form>
      <h3>Reference photos</h3>
      <label class="big-button secondary">
        <input type="file" accept="image/jpeg,image/png,image/webp" multiple onChange={addRefs} />
        Add reference photos
      </label>
      {refProgress && <p role="status">Uploading {refProgress}</p>}
      {refResults.length > 0 && (
        <ul class="ref-results" aria-live="polite" data-testid="reference-results">
          {refResults.map((r, i) => (
            <li key={i} class={r.ok ? 'ok' : 'error'}>
              {r.text}
            </li>
          ))}
        </ul>
      )}
      {msg && (
        <p class={msg.ok ? 'ok' : 'error'} role={msg.ok ? 'status' : 'alert'}>
          {msg.text}
        </p>
      )}
      {reloadError && (
        <p class="error" role="alert" data-testid="machine-reload-error">
          Could not reload the machine after adding reference photos: {reloadError}. The count below is from before they were added.{' '}
          <button type="button" class="small-button" onClick={() => void reload()}>
            Retry
          </button>
        </p>
      )}
      <p class="muted">{view ? `${count(view.references.length, 'reference photo')} stored${reloadError ? ' (before the photos just added)' : ''}.` : ''}</p>
    </section>
  );
}
