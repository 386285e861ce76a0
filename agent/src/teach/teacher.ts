import { newId, pack, TuError, type AnyEvent, type BusClient, type Clock, type EmbeddingValue, type Logger, type TeachLabel } from '@tu/shared';
import type { AnalysisStatusView } from '../orchestrator/state.js';
import type { ExampleStore, LabelledExample } from './examples.js';

export interface TeacherDeps {
  /** The intake's bus client: `intake` is the producer of `recognition.labelled` (shared/src/catalog.ts). */
  bus: BusClient;
  store: ExampleStore;
  /** The orchestrator's view of an analysis (undefined: unknown on this gateway). */
  analysis: (analysisId: string) => AnalysisStatusView | undefined;
  /** The numbers of a recognition result's embedding (blobs/derived.ts readEmbedding: EMBEDDING_MISSING when its file is gone). */
  embeddingOf: (value: EmbeddingValue) => Promise<number[]>;
  clock: Clock;
  logger: Logger;
  newId?: () => string;
  /** A write of the label store failed (the storage guard counts a full disk: health names it, fs/storage-guard.ts). */
  onStoreError?: (err: unknown) => void;
  /** Called once a new label is committed (the head refit listens: teach/refitter.ts). */
  onLabelled?: (example: LabelledExample) => void;
}

export interface LabelOutcome {
  example: LabelledExample;
  /** false: the analysis already had this label (a no-op returning the stored correction). */
  created: boolean;
}

/** Technicians teach the gateway (issue 13 part 4): confirm or correct a recognised machine type. */
export interface Teacher {
  label(analysisId: string, input: { label: TeachLabel; by: string }): Promise<LabelOutcome>;
  list(opts?: { limit?: number }): LabelledExample[];
  /** The analysis's current label, if a technician labelled it. */
  current(analysisId: string): LabelledExample | undefined;
  /** Publishes examples stored but not yet on the bus (a crash or a failed publish between commit and publish); resolves how many went out. */
  republishPending(): Promise<number>;
}

/** An event stored by a gateway older than embedding references carries the numbers: sent packed, as the schema now wants. */
function compatible(event: AnyEvent): AnyEvent {
  const data = event.data as { embedding?: unknown };
  return Array.isArray(data.embedding) ? ({ ...event, data: { ...data, embedding: pack(data.embedding as number[]) } } as AnyEvent) : event;
}

/**
 * When a label is given: now, yet always after the label it replaces. The relay keeps the label
 * with the newest `at` of each analysis (relay/src/storage/sql-storage.ts CURRENT_LABEL), and a
 * gateway's wall clock can step back (NTP setting it after a start with a clock ahead): a relabel
 * stamped earlier than the label before it was kept here and superseded at the relay.
 */
function labelTime(now: number, replaced: string | undefined): string {
  const after = replaced === undefined ? -Infinity : Date.parse(replaced) + 1;
  return new Date(Math.max(now, after)).toISOString();
}

export function createTeacher(d: TeacherDeps): Teacher {
  const log = d.logger.child({ component: 'teach' });
  const makeId = d.newId ?? newId;

  const publish = async (correctionId: string, event: Parameters<BusClient['republish']>[0]): Promise<boolean> => {
    try {
      await d.bus.republish(event);
      d.store.markPublished(correctionId);
      return true;
    } catch (err) {
      // Stored already: the event goes out with the next label or on the next start.
      log.warn({ err, correctionId }, 'label stored but not published yet; it is re-sent with the next label or when the agent restarts');
      return false;
    }
  };
  // One flush at a time (chained): concurrent labels never publish the same row twice.
  let chain: Promise<number> = Promise.resolve(0);
  const flush = (): Promise<number> => {
    chain = chain.then(async () => {
      let n = 0;
      for (const s of d.store.unpublished()) if (await publish(s.example.correctionId, compatible(s.event))) n++;
      return n;
    }).catch((err: unknown) => {
      // e.g. the store closed while stopping: what is stored stays for the next start.
      log.warn({ err }, 'publishing stored labels failed');
      return 0;
    });
    return chain;
  };

  return {
    async label(analysisId, input) {
      const view = d.analysis(analysisId);
      if (!view) throw new TuError('NOT_FOUND', `No analysis ${analysisId} on this gateway; label a photo from the result list.`);
      const rec = view.results.recognition;
      if (!rec) throw new TuError('NOT_RECOGNISED', `Analysis ${analysisId} has no recognition result (status ${view.status}); wait until the machine type was recognised, then confirm or correct it.`);
      const current = d.store.get(analysisId);
      // Idempotent: the same label again returns the stored correction (even from another technician).
      if (current && current.example.label === input.label) return { example: current.example, created: false };
      // The store keeps the numbers (the refit's input, kept after the quota evicts the photo); the event carries the reference.
      // A relabel takes the numbers stored with the analysis's earlier label: the same photo through
      // the same backbone, while its embedding file may be gone (the storage quota removes it with the
      // photo), which refused the technician's correction of a label with EMBEDDING_MISSING.
      const kept = current && current.example.sha256 === view.image.sha256 && current.example.model.version === rec.model.version ? current.example.embedding : undefined;
      const embedding = kept ?? (await d.embeddingOf(rec.embedding));
      // Checked again after the await (from here to the put nothing waits): the same label sent
      // twice at once (a double tap, two technicians) made two corrections, the first answered
      // with an id that no longer existed.
      const meanwhile = d.store.get(analysisId);
      if (meanwhile && meanwhile.example.label === input.label) return { example: meanwhile.example, created: false };
      const example: LabelledExample = {
        correctionId: makeId(),
        analysisId,
        ...(view.machineId ? { machineId: view.machineId } : {}),
        sha256: view.image.sha256,
        embedding,
        label: input.label,
        previousLabel: rec.machineType,
        kind: input.label === rec.machineType ? 'confirmation' : 'correction',
        by: input.by,
        at: labelTime(d.clock.now(), meanwhile?.example.at),
        model: { id: rec.model.id, version: rec.model.version, headId: rec.model.head?.id ?? null },
      };
      // The event id is the correction id: every re-send is the same event to the relay.
      const event = d.bus.buildEvent('recognition.labelled', { ...example, embedding: rec.embedding }, { subject: analysisId, id: example.correctionId, time: example.at });
      try {
        d.store.put(example, event);
      } catch (err) {
        d.onStoreError?.(err);
        // Said as the other writes of the agent say it (blobs/store.ts): what failed, and what to do.
        throw new TuError('STORAGE_FAILED', `The label could not be stored (${(err as NodeJS.ErrnoException).code ?? 'error'}: ${(err as Error).message}); nothing was stored. Free space in the data directory (dataDir), then give the label again.`, { cause: err });
      }
      d.onLabelled?.(example);
      // Publishes this label, and any earlier one whose publish failed, in the order stored.
      await flush();
      log.info({ analysisId, correctionId: example.correctionId, label: example.label, kind: example.kind }, 'technician labelled a photo');
      return { example, created: true };
    },
    list: (opts) => d.store.list(opts),
    current: (id) => d.store.get(id)?.example,
    republishPending: flush,
  };
}
