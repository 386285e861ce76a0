import { useEffect, useRef, useState } from 'preact/hooks';
import { errorText, getLabel, postLabel } from '../api';
import { when } from '../format';
import { useHealth } from '../hooks/useHealth';
import type { StoredLabel } from '../schemas';
import { TEACH_LABELS } from '@tu/shared/internal/machine-types';

/**
 * "Teach the gateway" on a result card (issue 13 part 4): confirm the recognised machine type
 * or choose the right one. The gateway validates and stores it (agent/src/http/routes/labels.ts);
 * the choices are the gateway's own list (shared/src/machine-types.ts).
 */
const CHOICES: readonly string[] = TEACH_LABELS;
const NAME_KEY = 'tu.technician';
const typeName = (s: string) => (s === 'negative' ? 'no machine' : s.replace(/_/g, ' '));

function savedName(): string {
  try {
    return localStorage.getItem(NAME_KEY) ?? '';
  } catch {
    return '';
  }
}

export function Teach({ analysisId, recognised }: { analysisId: string; recognised: string }) {
  const [by, setBy] = useState(savedName);
  const [choice, setChoice] = useState('');
  // What is missing gets the focus: the error says what to do, the cursor is where to do it (a phone keyboard opens there).
  const nameInput = useRef<HTMLInputElement>(null);
  const choiceSelect = useRef<HTMLSelectElement>(null);
  const [stored, setStored] = useState<StoredLabel | undefined>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  /** Why the stored label could not be read: without it, no "Saved" line reads as "nobody labelled this photo". */
  const [unread, setUnread] = useState<string | undefined>();

  useEffect(() => {
    let live = true;
    // Nothing stored is an answer ({ label: null }, agent/src/http/routes/labels.ts); an error is not.
    getLabel(analysisId)
      .then((r) => {
        if (!live) return;
        setUnread(undefined);
        if (r.label) setStored(r.label);
      })
      .catch((err: unknown) => live && setUnread(errorText(err).message));
    return () => {
      live = false;
    };
  }, [analysisId]);

  const send = (label: string) => {
    const name = by.trim();
    if (!name) {
      nameInput.current?.focus();
      return setError('Type your name first, so the office knows who checked this photo.');
    }
    if (!label) {
      choiceSelect.current?.focus();
      return setError('Choose the right machine type in the list first.');
    }
    try {
      localStorage.setItem(NAME_KEY, name);
    } catch {
      /* private mode: the name is just not remembered */
    }
    setBusy(true);
    setError(undefined);
    postLabel(analysisId, { label, by: name })
      .then((r) => setStored(r.label))
      .catch((err: unknown) => {
        const e = errorText(err);
        setError(e.code === 'NOT_RECOGNISED' ? 'This photo has no recognised machine type yet; wait for the result, then try again.' : e.message);
      })
      .finally(() => setBusy(false));
  };

  // Where the label goes from here: a gateway without a cloud uplink (health uplink.state 'disabled') never sends it.
  const uplink = useHealth().h?.uplink;
  const onward =
    uplink?.state === 'disabled'
      ? `It stays on this gateway: its cloud uplink is off${uplink.reason ? ` (${uplink.reason})` : ''}, so nothing is sent to the office.`
      : 'It reaches the office when the gateway is online.';
  const canConfirm = CHOICES.includes(recognised);
  return (
    <section class="teach" aria-label="Teach the gateway">
      <h3>Is the machine type right?</h3>
      <label class="teach-name">
        Your name
        <input ref={nameInput} value={by} onInput={(e) => setBy(e.currentTarget.value)} maxLength={128} autoComplete="name" />
      </label>
      <div class="row">
        {canConfirm && (
          <button type="button" class="big-button" data-testid="teach-confirm" disabled={busy} onClick={() => send(recognised)}>
            Right: {typeName(recognised)}
          </button>
        )}
      </div>
      <div class="row teach-correct">
        <label>
          {canConfirm ? 'Wrong? It is:' : 'The gateway could not tell. It is:'}
          <select ref={choiceSelect} value={choice} onChange={(e) => setChoice(e.currentTarget.value)} data-testid="teach-choice">
            <option value="">choose…</option>
            {CHOICES.filter((c) => c !== recognised).map((c) => (
              <option key={c} value={c}>
                {typeName(c)}
              </option>
            ))}
          </select>
        </label>
        <button type="button" class="small-button" data-testid="teach-correct" disabled={busy} onClick={() => send(choice)}>
          Save this type
        </button>
      </div>
      {unread && !stored && (
        <p class="error" role="alert">
          Could not check whether a type is already saved for this photo: {unread}
        </p>
      )}
      {busy && <p role="status">Saving…</p>}
      {error && (
        <p class="error" role="alert">
          Not saved: {error}
        </p>
      )}
      {stored && !busy && (
        <p class="ok" role="status" data-testid="teach-stored">
          Saved on the gateway: {stored.kind === 'confirmation' ? `confirmed ${typeName(stored.label)}` : `corrected to ${typeName(stored.label)} (gateway said ${typeName(stored.previousLabel)})`} by {stored.by},{' '}
          {when(stored.at)}. {onward}
        </p>
      )}
    </section>
  );
}
