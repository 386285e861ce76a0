import { z } from 'zod';
import { TEACH_LABELS } from '../machine-types.js';
import { embeddingValue } from '../embedding.js';
import { analysisId, isoTime, machineId, sha256 } from './common.js';

export { MACHINE_TYPES, NEGATIVE_LABEL, TEACH_LABELS, type TeachLabel } from '../machine-types.js';

export const teachLabel = z.enum(TEACH_LABELS, {
  error: (iss) => `label must be one of ${TEACH_LABELS.join(', ')}${typeof iss.input === 'string' ? ` (got '${iss.input.slice(0, 64)}')` : ''}`,
});

/** Who taught: the name or id the technician typed in the UI (free text, trimmed). */
export const technician = z.string().trim().min(1, 'by: name or id of the technician (1-128 characters)').max(128, 'by: at most 128 characters');

export const correctionId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'correctionId: 8-64 URL-safe characters');

/**
 * A technician confirmed or corrected the machine type the gateway recognised on a photo.
 * Carries what a head refit needs (the embedding and the label) and what accuracy statistics
 * need (the recognised label and whether it was confirmed). `correctionId` identifies this
 * labelling: re-sends carry the same id; a later relabel of the same analysis has a new id and
 * supersedes it (the newest `at` per gateway and analysis wins).
 */
export const recognitionLabelled = z.object({
  correctionId,
  analysisId,
  machineId: machineId.optional(),
  /** sha256 of the photo (its blob-store key). */
  sha256,
  /**
   * The recognition result's embedding of the photo (the head's input): a reference on the local
   * bus, packed when it reaches the relay (shared/src/embedding.ts, docs/messages.md).
   */
  embedding: embeddingValue,
  /** The label the technician confirmed or chose. */
  label: teachLabel,
  /** The machine type the gateway had recognised (`unknown` when the head abstained). */
  previousLabel: z.string().min(1).max(64),
  /** `confirmation`: label equals previousLabel; `correction`: the technician chose another label. */
  kind: z.enum(['confirmation', 'correction']),
  by: technician,
  at: isoTime,
  /** Backbone and head that produced the embedding and the recognised label. */
  model: z.object({
    id: z.string().min(1).max(128),
    version: z.string().min(1).max(64),
    headId: z.string().min(1).max(128).nullable(),
  }),
});
export type RecognitionLabelled = z.infer<typeof recognitionLabelled>;

/**
 * One line of the relay's labelled-examples export (`npm run relay -- examples export`, JSON
 * lines; relay/README.md "Labelled examples"), read back by `npm run train-head --examples` to
 * train one head for a whole fleet: the labelled event without the optional machine id, plus
 * the gateway it came from; the embedding as plain numbers (the relay unpacks what it receives).
 */
export const labelledExampleLine = recognitionLabelled
  .omit({ machineId: true })
  .extend({ gatewayId: z.string().min(1).max(64), embedding: z.array(z.number().finite()).min(1).max(4096) });
export type LabelledExampleLine = z.infer<typeof labelledExampleLine>;
