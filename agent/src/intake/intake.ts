import { randomBytes } from 'node:crypto';
import { newTraceparent, type BusClient, type ImageRef, type Logger } from '@tu/shared';
import type { BlobStore } from '../blobs/store.js';
import { makeThumbnail } from '../blobs/thumbnail.js';
import type { IntakeJournal } from './journal.js';
import { validateImage, type IntakeLimits } from './validate.js';

export interface IntakeDeps {
  /** The `intake` service's bus client (producer of tu.image.uploaded). */
  bus: BusClient;
  blobs: BlobStore;
  journal: IntakeJournal;
  limits: IntakeLimits;
  /** True when the orchestrator knows the analysis (it deduplicates by analysisId). */
  knows: (analysisId: string) => boolean;
  logger: Logger;
  /** How often acknowledged journal entries are cleared and stale ones re-published (ms). */
  sweepMs?: number;
}

export interface AcceptedUpload {
  analysisId: string;
  image: ImageRef;
  duplicateBlob: boolean;
}

export interface IntakeStats {
  accepted: number;
  rejected: Record<string, number>;
  republished: number;
}

export interface Intake {
  readonly stats: IntakeStats;
  /** Validates, stores, journals and publishes one upload. Throws a TuError (catalogue code, its HTTP status) when refused (nothing published). */
  accept(bytes: Buffer, declaredType: string | undefined, opts: { machineId?: string; via?: 'api' | 'ui' | 'cli' }): Promise<AcceptedUpload>;
  countRejection(code: string): void;
  /** Re-publishes journalled uploads the orchestrator does not know (after a crash). */
  recover(): Promise<number>;
  pending(): number;
  stop(): Promise<void>;
}

export const newAnalysisId = (): string => randomBytes(12).toString('base64url');

/**
 * Image intake. A 202 means: the blob is fsynced, the upload event is in the journal
 * (synchronous=FULL), and it was published. Journal entries go once the orchestrator has
 * known the analysis for a full sweep interval (its state store commits within
 * milliseconds); on start every entry it does not know is published again (same event id).
 */
export function createIntake(deps: IntakeDeps): Intake {
  const log = deps.logger.child({ component: 'intake' });
  const stats: IntakeStats = { accepted: 0, rejected: {}, republished: 0 };
  /** analysisId → when the orchestrator was first seen knowing it (0 = not yet). */
  const unacked = new Map<string, number>();
  for (const e of deps.journal.all()) unacked.set(e.analysisId, 0);
  const sweepMs = deps.sweepMs ?? 1000;

  const sweep = (): void => {
    const now = Date.now();
    for (const [id, knownSince] of unacked) {
      if (knownSince === 0) {
        if (deps.knows(id)) unacked.set(id, now);
      } else if (now - knownSince >= sweepMs) {
        deps.journal.remove(id);
        unacked.delete(id);
      }
    }
  };
  const timer = setInterval(sweep, sweepMs);
  timer.unref();

  return {
    stats,
    countRejection(code) {
      stats.rejected[code] = (stats.rejected[code] ?? 0) + 1;
    },
    async accept(bytes, declaredType, opts) {
      const checked = await validateImage(bytes, declaredType, deps.limits);
      const [put, thumbnail] = await Promise.all([deps.blobs.put(bytes), makeThumbnail(bytes, deps.limits.maxPixels)]);
      const analysisId = newAnalysisId();
      const image: ImageRef = {
        sha256: put.sha256,
        contentType: checked.contentType,
        bytes: put.bytes,
        ...(checked.width ? { width: checked.width } : {}),
        ...(checked.height ? { height: checked.height } : {}),
        ...(thumbnail ? { thumbnail } : {}),
      };
      const event = deps.bus.buildEvent(
        'tu.image.uploaded',
        {
          analysisId,
          gatewayId: deps.bus.gatewayId,
          ...(opts.machineId ? { machineId: opts.machineId } : {}),
          image,
          uploadedAt: new Date().toISOString(),
          via: opts.via ?? 'api',
        },
        { subject: analysisId, traceparent: newTraceparent() },
      );
      deps.journal.add({ analysisId, event, acceptedAt: Date.now() });
      unacked.set(analysisId, 0);
      await deps.bus.republish(event);
      stats.accepted++;
      log.info({ analysisId, sha256: put.sha256, bytes: put.bytes, duplicateBlob: !put.created }, 'image accepted');
      return { analysisId, image, duplicateBlob: !put.created };
    },
    async recover() {
      let n = 0;
      for (const e of deps.journal.all()) {
        if (deps.knows(e.analysisId)) continue;
        await deps.bus.republish(e.event);
        unacked.set(e.analysisId, 0);
        n++;
      }
      stats.republished += n;
      if (n) log.warn({ republished: n }, 're-published uploads accepted before a restart');
      return n;
    },
    pending: () => unacked.size,
    async stop() {
      clearInterval(timer);
      sweep();
    },
  };
}
