/**
 * Keeps the in-process recognizer's head fitted to the technicians' labelled photos
 * (services/vision/refit.ts): once at start and again after every new label, so the next
 * photo is recognised with the corrected head. The refit runs in the vision worker, never
 * on this event loop. One refit at a time; labels that arrive meanwhile cause one more.
 * Examples embedded by another backbone (before a model update) cannot train this head and
 * are left out (counted as skipped).
 */
import type { Logger } from '@tu/shared';
import type { RefitSummary } from '../services/vision/refit.js';
import type { Recognizer } from '../services/vision/recognizer.js';
import type { LabelledExample } from './examples.js';

export interface RefitState extends RefitSummary {
  /** Examples left out because another backbone embedded them. */
  otherBackbone: number;
  at: string;
}

export interface HeadRefitter {
  /** Asks for a refit with the current examples (coalesced); also after the recognizer was replaced. */
  schedule(): void;
  /** Resolves when no refit is running or scheduled (tests, shutdown). */
  idle(): Promise<void>;
  /** The refit the current recognizer runs with (null: none, or not yet applied to a replaced one). */
  last(): RefitState | null;
}

export interface HeadRefitterDeps {
  examples: () => LabelledExample[];
  recognizer: () => Recognizer | undefined;
  logger: Logger;
  now?: () => Date;
}

export function createHeadRefitter(d: HeadRefitterDeps): HeadRefitter {
  const log = d.logger.child({ component: 'refit' });
  let running: Promise<void> | null = null;
  let again = false;
  let last: RefitState | null = null;
  /** The recognizer `last` was applied to: a replaced one (worker crash) runs the head from its file. */
  let appliedTo: Recognizer | null = null;

  const once = async (): Promise<void> => {
    const recognizer = d.recognizer();
    const info = recognizer?.info();
    // Vision in another process, or no head to refit: nothing to do here.
    if (!recognizer || !info?.model.head) return;
    const all = d.examples();
    const usable = all.filter((e) => e.model.version === info.model.version);
    if (usable.length === 0 && !last) return;
    try {
      const summary = await recognizer.teach(usable.map((e) => ({ label: e.label, embedding: e.embedding })));
      last = { ...summary, otherBackbone: all.length - usable.length, at: (d.now?.() ?? new Date()).toISOString() };
      appliedTo = recognizer;
      log.info({ ...last }, 'machine-type head refitted to the technicians\' examples');
    } catch (err) {
      log.warn({ err }, 'refitting the head to the technicians\' examples failed; the shipped head stays in use');
    }
  };

  const loop = async (): Promise<void> => {
    do {
      again = false;
      await once();
    } while (again);
    running = null;
  };

  return {
    schedule() {
      if (running) {
        again = true;
        return;
      }
      running = loop();
    },
    idle: async () => {
      while (running) await running;
    },
    // Health (http/routes/health.ts model.refit) must not claim corrections the running worker lacks.
    last: () => (last && appliedTo === d.recognizer() ? last : null),
  };
}
