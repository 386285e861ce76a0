import { TuError, type Clock, type Logger } from '@tu/shared';
import type { PhotoHistory } from '../device/history.js';
import type { BlobStore } from './store.js';

/** What the quota must never evict: photos and analyses still needed. */
export interface Needed {
  /** Analyses running, queued, not yet taken from the intake journal, or with an event not yet delivered to the relay. */
  analyses: Set<string>;
  /** Their photos, those of uploads being stored or journalled (Intake.pendingImages), and the registered machine's reference photos. */
  shas: Set<string>;
}

export interface StorageQuotaDeps {
  blobs: BlobStore;
  history: PhotoHistory;
  /** storage.maxBytes: blobs + history. */
  maxBytes: number;
  /** Every analysis's photo, oldest first (see StateStore.imagesByAge). */
  imagesByAge(afterRow: number, limit: number): { row: number; analysisId: string; sha256: string; finished: boolean; updatedAt: number }[];
  needed(): Needed;
  /**
   * A finished analysis is evictable only this long after its last write: its terminal event
   * reaches the uplink outbox over the local bus, a moment after the state store closes it.
   */
  settleMs?: number;
  /** The state store's clock: `updatedAt` is its wall time (orchestrator/store.ts toRow). */
  clock: Clock;
  logger: Logger;
}

export interface QuotaStatus {
  maxBytes: number;
  usedBytes: number;
  blobBytes: number;
  historyBytes: number;
  evictedBlobs: number;
  evictedBytes: number;
  evictedHistory: number;
  /** Uploads refused because nothing could be evicted. */
  refused: number;
  /** Why the last upload was refused, while the quota is still exceeded (health reason). */
  blocked?: string;
}

/** Room made for one photo: counted as used until released. */
export interface QuotaReservation {
  /** Call once the photo is stored (the blob store counts it now) or failed; idempotent. */
  release(): void;
}

export interface StorageQuota {
  /**
   * Evicts the oldest delivered photos (then history entries) until `incoming` more bytes fit,
   * and reserves them; 507 STORAGE_FAILED when they cannot.
   */
  makeRoom(incoming: number): Promise<QuotaReservation>;
  status(): QuotaStatus;
}

const mb = (n: number) => `${Math.round(n / 1024 / 1024)} MB`;

/**
 * The storage quota of photos and comparison history (storage.maxBytes). Eviction goes
 * oldest first and only takes what nothing needs any more: the analysis finished and its
 * events were delivered to the relay (or the uplink is off); never a photo of a running or
 * queued analysis, of an undelivered event, or a reference photo. Comparison needs no
 * blobs of earlier photos (the history keeps their embeddings and hashes), so photos go
 * first, then the oldest history entries. One eviction runs at a time, and the room it made
 * stays reserved until the photo is stored, so uploads arriving together cannot overfill it.
 */
export function createStorageQuota(deps: StorageQuotaDeps): StorageQuota {
  const log = deps.logger.child({ component: 'storage-quota' });
  const settleMs = deps.settleMs ?? 5_000;
  const st = { evictedBlobs: 0, evictedBytes: 0, evictedHistory: 0, refused: 0 };
  let blocked: string | undefined;
  /** Every analysis up to this row is finished and its photo evicted: later scans start after it. */
  let cursor = 0;
  let chain: Promise<unknown> = Promise.resolve();
  /**
   * Bytes of photos given room but not stored yet. Without them, uploads arriving together
   * would each see the same free space and all pass (makeRoom runs one at a time, but the
   * puts it makes room for finish later).
   */
  let reserved = 0;

  const used = () => deps.blobs.usedBytes() + deps.history.usedBytes() + reserved;
  const reserve = (bytes: number): QuotaReservation => {
    reserved += bytes;
    let held = true;
    return {
      release() {
        if (!held) return;
        held = false;
        reserved -= bytes;
      },
    };
  };

  const evict = async (incoming: number): Promise<void> => {
    const over = () => used() + incoming - deps.maxBytes;
    if (over() <= 0) {
      blocked = undefined;
      return;
    }
    const needed = deps.needed();
    let freedBlobs = 0;
    let freedBytes = 0;
    let contiguous = true;
    for (let after = cursor; over() > 0; ) {
      const batch = deps.imagesByAge(after, 200);
      if (batch.length === 0) break;
      // updated_at is the store's wall-clock time (orchestrator/store.ts toRow), so is this.
      const settled = deps.clock.now() - settleMs;
      for (const r of batch) {
        if (over() <= 0) break;
        if (!r.finished || r.updatedAt >= settled || needed.analyses.has(r.analysisId) || needed.shas.has(r.sha256)) {
          contiguous = false; // still needed: look again next time
          continue;
        }
        const n = r.sha256 ? await deps.blobs.remove(r.sha256) : 0;
        if (n > 0) {
          freedBlobs++;
          freedBytes += n;
        }
        if (contiguous) cursor = r.row;
      }
      after = batch[batch.length - 1]!.row;
    }
    let history = 0;
    while (over() > 0) {
      const n = deps.history.evictOldest(50, (id) => id === undefined || !needed.analyses.has(id));
      if (n === 0) break;
      history += n;
    }
    st.evictedBlobs += freedBlobs;
    st.evictedBytes += freedBytes;
    st.evictedHistory += history;
    if (freedBlobs || history) log.info({ evictedBlobs: freedBlobs, evictedBytes: freedBytes, evictedHistory: history, usedBytes: used(), maxBytes: deps.maxBytes }, 'storage quota: evicted the oldest delivered photos');
    if (over() > 0) {
      st.refused++;
      blocked = `storage quota full: ${mb(used())} of storage.maxBytes ${mb(deps.maxBytes)} hold photos of analyses still running or with results not yet delivered to the relay (${needed.analyses.size} analyses${reserved > 0 ? `, and ${mb(reserved)} of uploads being stored` : ''}); new uploads are refused with 507 until they are delivered`;
      log.warn({ usedBytes: used(), maxBytes: deps.maxBytes, needed: needed.analyses.size }, 'storage quota full and nothing can be evicted');
      throw new TuError(
        'STORAGE_FAILED',
        `The gateway's photo storage quota (storage.maxBytes = ${mb(deps.maxBytes)}) is full of photos whose analyses are still running or whose results are not delivered to the relay yet; nothing was accepted. Check the uplink in the health page, wait for deliveries, or raise storage.maxBytes.`,
      );
    }
    blocked = undefined;
  };

  return {
    makeRoom(incoming) {
      // Reserved in the same turn as the eviction ends, before the next makeRoom looks at used().
      const run = chain.then(() => evict(incoming)).then(() => reserve(incoming));
      chain = run.catch(() => undefined);
      return run;
    },
    status() {
      const blobBytes = deps.blobs.usedBytes();
      const historyBytes = deps.history.usedBytes();
      return { maxBytes: deps.maxBytes, usedBytes: blobBytes + historyBytes, blobBytes, historyBytes, ...st, ...(blocked ? { blocked } : {}) };
    },
  };
}
