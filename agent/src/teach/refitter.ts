/**
 * Keeps the in-process recognizer's head fitted to the technicians' labelled photos
 * (services/vision/refit.ts): once at start and again after every new label, so the next
 * photo is recognised with the corrected head. The refit runs in the vision worker, never
 * on this event loop. One refit at a time; labels that arrive meanwhile cause one more.
 * Examples embedded by another backbone (before a model update) cannot train this head and
 * are left out (counted as skipped). A refit uses the newest REFIT_MAX_EXAMPLES labels only:
 * its cost grows with the cube of the examples (services/vision/refit.ts), and the newest
 * labels say most about the machines this gateway sees now. Older ones stay stored and sent.
 */
import type { Logger } from '@tu/shared';
import type { RefitSummary } from '../services/vision/refit.js';
import type { Recognizer } from '../services/vision/recognizer.js';
import type { LabelledExample } from './examples.js';

/** How many of the newest labels a refit uses (1.5–3 s for 1,000 on an x64 core, bench/refit.bench.ts). */
export const REFIT_MAX_EXAMPLES = 1000;

export interface RefitState extends RefitSummary {
  /** Examples left out because another backbone embedded them. */
  otherBackbone: number;
  /** Older examples left out: a refit uses the newest REFIT_MAX_EXAMPLES. */
  older: number;
  at: string;
}

export interface HeadRefitter {
  /** Asks for a refit with the current examples (coalesced); also after the recognizer was replaced. */
  schedule(): void;
  /** Resolves when no refit is running or scheduled (tests, shutdown). */
  idle(): Promise<void>;
  /** The refit the current recognizer runs with (null: none, or not yet applied to a replaced one). */
  last(): RefitState | null;
  /** Why the last refit failed (null: it did not, or none was tried): the labels are not in the head. */
  problem(): RefitProblem | null;
}

export interface RefitProblem {
  code: string;
  message: string;
  at: string;
}

export interface HeadRefitterDeps {
  /** The newest `limit` labelled examples, newest first (teach/examples.ts list). */
  examples: (limit: number) => LabelledExample[];
  /** How many labelled examples are stored in all. */
  exampleCount: () => number;
  recognizer: () => Recognizer | undefined;
  logger: Logger;
  now?: () => Date;
}

export function createHeadRefitter(d: HeadRefitterDeps): HeadRefitter {
  const log = d.logger.child({ component: 'refit' });
  let running: Promise<void> | null = null;
  let again = false;
  let last: RefitState | null = null;
  let problem: RefitProblem | null = null;
  const now = (): string => (d.now?.() ?? new Date()).toISOString();
  /** The recognizer `last` was applied to: a replaced one (worker crash) runs the head from its file. */
  let appliedTo: Recognizer | null = null;

  const once = async (): Promise<void> => {
    try {
      await refit();
    } catch (err) {
      // Reading the labels failed (a failing disk, the store closed while stopping): nobody awaits
      // this loop, and a rejection left it unhandled, which ends the agent (Node's default).
      log.warn({ err }, 'reading the technicians\' examples for a refit failed; the head in use stays');
    }
  };

  const refit = async (): Promise<void> => {
    const recognizer = d.recognizer();
    const info = recognizer?.info();
    // Vision in another process, or no head to refit: nothing to do here.
    if (!recognizer || !info?.model.head) return;
    const all = d.examples(REFIT_MAX_EXAMPLES);
    const older = Math.max(0, d.exampleCount() - all.length);
    const usable = all.filter((e) => e.model.version === info.model.version);
    // No label at all: the shipped head as it is, nothing to say. Labels only of another backbone
    // (a model update) still refit, to nothing: health then says how many labels the head lacks,
    // where it said null as if no technician had labelled anything.
    if (all.length === 0 && !last) return;
    try {
      const summary = await recognizer.teach(usable.map((e) => ({ label: e.label, embedding: e.embedding })));
      last = { ...summary, otherBackbone: all.length - usable.length, older, at: now() };
      appliedTo = recognizer;
      problem = null;
      log.info({ ...last }, 'machine-type head refitted to the technicians\' examples');
    } catch (err) {
      // Health says so (http/routes/health.ts): a technician's label that never reaches the head
      // (a kNN head, a failed refit thread) was told by nothing but this log line.
      const e = err as { code?: unknown; message?: unknown };
      problem = { code: typeof e.code === 'string' ? e.code : 'REFIT_FAILED', message: String(e.message ?? err), at: now() };
      log.warn({ err }, 'refitting the head to the technicians\' examples failed; the head in use stays as it was');
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
    problem: () => problem,
  };
}
