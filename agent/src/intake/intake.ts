import { randomBytes } from 'node:crypto';
import { newTraceparent, systemClock, TuError, type AnyEvent, type BusClient, type Clock, type ImageRef, type Logger } from '@tu/shared';
import { sha256Sliced, type BlobStore } from '../blobs/store.js';
import type { QuotaReservation } from '../blobs/quota.js';
import { writeThumbnail } from '../blobs/derived.js';
import { makeThumbnail } from '../blobs/thumbnail.js';
import type { StorageGuard } from '../fs/storage-guard.js';
import type { IntakeJournal } from './journal.js';
import { validateImage, type IntakeLimits, type ValidatedImage } from './validate.js';

export interface IntakeDeps {
  /** The `intake` service's bus client (producer of tu.image.uploaded). */
  bus: BusClient;
  blobs: BlobStore;
  journal: IntakeJournal;
  limits: IntakeLimits;
  /** True when the orchestrator knows the analysis (it deduplicates by analysisId). */
  knows: (analysisId: string) => boolean;
  /**
   * True once the orchestrator's row of the analysis is on disk (orchestrator/store.ts onDisk):
   * only then may its journal entry go. Knowing the analysis in memory is not enough: its row
   * can wait behind a slow commit (an SD card's fsync) or a full disk, and a power cut before it
   * is written would lose an upload answered 202.
   */
  stored?: (analysisId: string) => boolean;
  /** Analyses the orchestrator holds (running + queued) and how many it may hold; beyond it, it fails new ones with QUEUE_FULL. */
  capacity: () => { held: number; max: number };
  logger: Logger;
  /** Refuses new uploads (507) while the data directory is full, and hears of failed writes. */
  storage?: StorageGuard;
  /** Makes room for a photo within storage.maxBytes (evicting old delivered ones) and reserves it, or refuses it with 507. */
  quota?: { makeRoom(bytes: number): Promise<QuotaReservation> };
  /** How often acknowledged journal entries are cleared and stranded ones re-published (ms). */
  sweepMs?: number;
  /** An upload the orchestrator still does not know this long after its last publish is published again (ms). */
  redriveMs?: number;
  clock?: Clock;
}

export interface AcceptedUpload {
  analysisId: string;
  image: ImageRef;
  duplicateBlob: boolean;
}

export interface IntakeStats {
  accepted: number;
  rejected: Record<string, number>;
  /** Uploads published again: after a restart, or stranded while running. */
  republished: number;
}

export interface Intake {
  readonly stats: IntakeStats;
  /**
   * Validates, stores, journals and publishes one upload. Throws a TuError (catalogue code, its
   * HTTP status) when refused (nothing published). `sha256`: the bytes' hash when the HTTP
   * layer computed it while the body streamed in (http/read-image.ts).
   */
  accept(bytes: Buffer, declaredType: string | undefined, opts: { machineId?: string; fileName?: string; via?: 'api' | 'ui' | 'cli'; sha256?: string }): Promise<AcceptedUpload>;
  countRejection(code: string): void;
  /**
   * A place for one upload in the orchestrator's queue, counting the uploads it has not taken
   * yet and the places already handed out; undefined when full. A 202 is a promise: an upload
   * is reserved a place at the door (before its body is read) or refused with 429. Release the
   * place once the upload was accepted or refused (idempotent). Throws STORAGE_FAILED (507)
   * while the data directory is full: refused at the door, before the body is read.
   */
  reserve(): { release(): void } | undefined;
  /** Re-publishes journalled uploads the orchestrator does not know (at start, after a crash). */
  recover(): Promise<number>;
  pending(): number;
  /**
   * Photos (sha256) the storage quota must keep for the intake: those of uploads being stored
   * (from before the quota makes room for them until they are journalled or refused) and of the
   * journalled uploads not yet cleared.
   */
  pendingImages(): string[];
  stop(): Promise<void>;
}

export const newAnalysisId = (): string => randomBytes(12).toString('base64url');

/**
 * Image intake. A 202 means: the blob is fsynced, the upload event is in the journal
 * (synchronous=FULL), and it was published. Journal entries go once the orchestrator has
 * known the analysis for a full sweep interval (its state store commits within
 * milliseconds). An upload the orchestrator does not know is published again (same event
 * id; the orchestrator deduplicates by analysisId): on start, and while running once it has
 * been stranded for redriveMs (the orchestrator was off the bus when it was published).
 */
export function createIntake(deps: IntakeDeps): Intake {
  const log = deps.logger.child({ component: 'intake' });
  const clock = deps.clock ?? systemClock;
  const stats: IntakeStats = { accepted: 0, rejected: {}, republished: 0 };
  /**
   * Journalled uploads not yet cleared: when the orchestrator was first seen knowing each, and when
   * each was last published (undefined: not yet), on the monotonic clock. They were wall-clock
   * times, and a wall clock set back (a gateway's clock that was ahead, corrected) kept every
   * entry from being cleared, its photo pinned against the quota, until the clock caught up.
   */
  const unacked = new Map<string, { event: AnyEvent; knownSince?: number; publishedAt?: number }>();
  for (const e of deps.journal.all()) unacked.set(e.analysisId, { event: e.event });
  /** Places handed out at the door to uploads still being received (see reserve). */
  let reserved = 0;
  const sweepMs = deps.sweepMs ?? 1000;
  const redriveMs = deps.redriveMs ?? 5000;

  const republish = (e: { event: AnyEvent; publishedAt?: number }): Promise<void> => {
    e.publishedAt = clock.monotonic();
    return deps.bus.republish(e.event).then(
      () => void stats.republished++,
      (err: Error) => log.warn({ err: err.message, analysisId: e.event.subject }, 'could not re-publish a stranded upload; trying again at the next sweep'),
    );
  };
  /** The sweep's removal being committed (one at a time; its entries stay in `unacked` until it is). */
  let removing: Promise<void> | undefined;
  const sweep = (): Promise<void> => {
    const now = clock.monotonic();
    const done: string[] = [];
    for (const [id, e] of unacked) {
      if (e.knownSince === undefined) {
        if (deps.knows(id)) e.knownSince = now;
        else if (e.publishedAt !== undefined && now - e.publishedAt >= redriveMs) {
          log.warn({ analysisId: id, sinceMs: now - e.publishedAt }, 're-publishing an upload the orchestrator has not taken');
          void republish(e);
        }
      } else if (now - e.knownSince >= sweepMs && (deps.stored?.(id) ?? true)) {
        done.push(id);
      }
    }
    if (removing || !done.length) return removing ?? Promise.resolve();
    // All acknowledged entries go in one commit of the journal's writer thread.
    removing = deps.journal.remove(done).then(
      () => {
        for (const id of done) unacked.delete(id);
      },
      (err: Error) => {
        // A full or failing disk must not take the agent down: the entries stay, and the next sweep tries again.
        deps.storage?.report(err, 'intake journal');
        log.error({ err: err.message, entries: done.length }, 'intake journal sweep failed; will retry');
      },
    ).finally(() => {
      removing = undefined;
    });
    return removing;
  };
  const timer = setInterval(() => void sweep(), sweepMs);
  timer.unref();

  /**
   * Photos (sha256, with how many uploads carry each) of uploads between the quota and their
   * journal entry. The quota must not evict them meanwhile: a photo already stored for an older,
   * finished analysis is only found present by put, and another upload's eviction could take it
   * before this one is journalled (then in `unacked`, so in pendingImages either way).
   */
  const arriving = new Map<string, number>();
  /** Stores the photo (within the quota) and its thumbnail and journals the upload; the event is not published yet. */
  const storeAndJournal = async (
    bytes: Buffer,
    sha256: string,
    checked: ValidatedImage,
    opts: { machineId?: string; fileName?: string; via?: 'api' | 'ui' | 'cli' },
  ): Promise<{ analysisId: string; image: ImageRef; event: AnyEvent; created: boolean }> => {
    // A photo already stored takes no more room: making room for it again refused a re-upload
    // with 507 while the quota was full, and at other times evicted photos it did not need. It
    // cannot go between this check and put: it is `arriving`, which the quota never evicts.
    const room = (await deps.blobs.has(sha256)) ? undefined : await deps.quota?.makeRoom(bytes.byteLength);
    const [put, thumbnail] = await Promise.all([
      deps.blobs
        .put(bytes, sha256)
        .catch((err: unknown) => {
          deps.storage?.report(err, 'blob store');
          throw err;
        })
        // Stored (the blob store counts it now) or failed: either way the room is no longer held for it.
        .finally(() => room?.release()),
      makeThumbnail(bytes, deps.limits.maxPixels),
    ]);
    // The thumbnail stays beside the photo: the bus carries references only, the edges put it in (docs/messages.md).
    if (thumbnail) {
      await writeThumbnail(deps.blobs, put.sha256, thumbnail).catch((err: unknown) => {
        // Without it the dashboards show no picture; the analysis itself does not need it.
        deps.storage?.report(err, 'blob store');
        log.warn({ err: (err as Error).message, sha256: put.sha256 }, 'could not store the thumbnail; the photo is analysed without one');
      });
    }
    const analysisId = newAnalysisId();
    const image: ImageRef = {
      sha256: put.sha256,
      contentType: checked.contentType,
      bytes: put.bytes,
      ...(checked.width ? { width: checked.width } : {}),
      ...(checked.height ? { height: checked.height } : {}),
    };
    const event = deps.bus.buildEvent(
      'tu.image.uploaded',
      {
        analysisId,
        gatewayId: deps.bus.gatewayId,
        ...(opts.machineId ? { machineId: opts.machineId } : {}),
        image,
        uploadedAt: new Date(clock.now()).toISOString(),
        via: opts.via ?? 'api',
        ...(opts.fileName ? { fileName: opts.fileName } : {}),
      },
      { subject: analysisId, traceparent: newTraceparent() },
    );
    try {
      await deps.journal.add({ analysisId, event, acceptedAt: clock.now() });
    } catch (err) {
      // Not journalled, not durable: never answered 202 (the blob alone is harmless, stored once).
      if (deps.storage?.report(err, 'intake journal')) {
        throw new TuError('STORAGE_FAILED', `The gateway's storage is full: the upload could not be journalled (${(err as Error).message}); nothing was accepted. Free space in dataDir and send the photo again.`, { cause: err });
      }
      throw err;
    }
    unacked.set(analysisId, { event, publishedAt: clock.monotonic() });
    return { analysisId, image, event, created: put.created };
  };

  return {
    stats,
    countRejection(code) {
      stats.rejected[code] = (stats.rejected[code] ?? 0) + 1;
    },
    reserve() {
      deps.storage?.assertWritable();
      let untaken = 0;
      const now = clock.monotonic();
      for (const [id, e] of unacked) {
        if (e.knownSince !== undefined) continue;
        if (deps.knows(id)) e.knownSince = now; // taken since the last sweep
        else untaken++;
      }
      const c = deps.capacity();
      if (c.held + untaken + reserved >= c.max) return undefined;
      reserved++;
      let held = true;
      return {
        release() {
          if (!held) return;
          held = false;
          reserved--;
        },
      };
    },
    async accept(bytes, declaredType, opts) {
      const checked = await validateImage(bytes, declaredType, deps.limits);
      deps.storage?.assertWritable();
      // Hashed before the quota runs (unless the HTTP layer hashed it while it streamed in): the
      // photo is needed from then on (see `arriving`).
      const sha256 = opts.sha256 ?? (await sha256Sliced(bytes));
      arriving.set(sha256, (arriving.get(sha256) ?? 0) + 1);
      let journalled: { analysisId: string; image: ImageRef; event: AnyEvent; created: boolean };
      try {
        journalled = await storeAndJournal(bytes, sha256, checked, opts);
      } finally {
        const n = (arriving.get(sha256) ?? 1) - 1;
        if (n > 0) arriving.set(sha256, n);
        else arriving.delete(sha256);
      }
      const { analysisId, image, event, created } = journalled;
      // Journalled = accepted: a failed publish is the sweep's to repeat (after redriveMs). Failing
      // the request here made the client send the photo again, and both uploads were analysed.
      await deps.bus.republish(event).catch((err: Error) => log.warn({ err: err.message, analysisId }, 'publishing an accepted upload failed; the journal sweep publishes it again'));
      stats.accepted++;
      log.info({ analysisId, sha256: image.sha256, bytes: image.bytes, duplicateBlob: !created }, 'image accepted');
      return { analysisId, image, duplicateBlob: !created };
    },
    async recover() {
      let n = 0;
      for (const [id, e] of unacked) {
        if (deps.knows(id)) continue;
        await republish(e);
        n++;
      }
      if (n) log.warn({ republished: n }, 're-published uploads accepted before a restart');
      return n;
    },
    pending: () => unacked.size,
    pendingImages: () => [
      ...arriving.keys(),
      ...[...unacked.values()].flatMap((e) => {
        const sha = (e.event.data as { image?: { sha256?: unknown } }).image?.sha256;
        return typeof sha === 'string' ? [sha] : [];
      }),
    ],
    async stop() {
      clearInterval(timer);
      await removing;
      await sweep();
    },
  };
}
