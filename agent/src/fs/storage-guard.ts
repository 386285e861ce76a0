import fs from 'node:fs';
import path from 'node:path';
import { systemClock, TuError, type Clock, type Logger, type TimerHandle } from '@tu/shared';
import { writeFileDurable } from './durable.js';

/** Error codes that mean "the data directory cannot take writes now" (not a bug, not bad input). */
const STORAGE_CODES = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EFBIG', 'EROFS', 'SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_READONLY']);
/** The same, as SQLite words it when the error crossed a worker thread as text. */
const STORAGE_TEXT = /ENOSPC|EDQUOT|EIO\b|EFBIG|EROFS|SQLITE_FULL|database or disk is full|disk I\/O error|no space left|quota exceeded|attempt to write a readonly database/i;

/** True when err (or its cause) is a full, over-quota or failing disk. */
export function isStorageError(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (STORAGE_CODES.has(code) || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_FULL'))) return true;
    if (e instanceof TuError && e.code === 'STORAGE_FAILED') return true;
    if (e instanceof Error && STORAGE_TEXT.test(e.message)) return true;
  }
  return false;
}

export interface StorageStatus {
  /** `full`: new work is refused (507) until a probe write succeeds again. */
  state: 'ok' | 'full';
  /** Why new work is refused, one sentence for the technician (only when full). */
  reason?: string;
  /** ISO time the data directory became unwritable. */
  since?: string;
  /** Which write failed first (blobs, intake journal, state store, outbox, history, …). */
  where?: string;
  /** Free and total bytes of the data directory's filesystem (statfs), undefined where unsupported. */
  freeBytes?: number;
  totalBytes?: number;
  /** Below this much free space new work is refused (storage.minFreeBytes). */
  minFreeBytes: number;
  /** Write failures reported since start (ENOSPC, SQLITE_FULL, EIO, …). */
  writeErrors: number;
}

export interface StorageGuard {
  /** Throws STORAGE_FAILED (507) when the data directory cannot take new work; nothing is stored then. */
  assertWritable(): void;
  /** A write failed: when it is a storage error, new work is refused and a recovery probe starts. Returns whether it was one. */
  report(err: unknown, where: string): boolean;
  /** Runs fn when the disk takes writes again (stores retry their parked batches then). */
  onRecovered(fn: () => void): () => void;
  status(): StorageStatus;
  stop(): void;
}

export interface StorageGuardOptions {
  dataDir: string;
  /** New work is refused while the filesystem has less free space than this (room for accepted work to finish). */
  minFreeBytes: number;
  clock?: Clock;
  logger: Logger;
  /** First and longest wait between recovery probes (ms). */
  probeMinMs?: number;
  probeMaxMs?: number;
}

/**
 * Watches the data directory's free space and the write failures the stores report.
 * A full disk refuses new work at the door (507 STORAGE_FAILED, see shared/src/errors.ts)
 * while reads keep working; a probe (statfs + a small fsynced write) runs with backoff on
 * the injected clock and lets work in again by itself once space returns.
 */
export function createStorageGuard(opts: StorageGuardOptions): StorageGuard {
  const log = opts.logger.child({ component: 'storage' });
  const clock = opts.clock ?? systemClock;
  const probeMin = opts.probeMinMs ?? 500;
  const probeMax = opts.probeMaxMs ?? 10_000;
  const probeFile = path.join(opts.dataDir, '.storage-probe');
  let full: { since: number; where: string; detail: string } | undefined;
  let writeErrors = 0;
  let timer: TimerHandle | undefined;
  let delay = probeMin;
  let stopped = false;
  const listeners = new Set<() => void>();

  const space = (): { free: number; total: number } | undefined => {
    try {
      const s = fs.statfsSync(opts.dataDir);
      return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
    } catch {
      return undefined;
    }
  };
  const lowSpace = (): { free: number } | undefined => {
    const s = space();
    return s && s.free < opts.minFreeBytes ? s : undefined;
  };
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

  const recovered = () => {
    if (!full) return;
    log.warn({ downMs: clock.now() - full.since, where: full.where }, 'the data directory takes writes again; accepting new work');
    full = undefined;
    delay = probeMin;
    for (const fn of listeners) {
      try {
        fn();
      } catch (err) {
        log.error({ err }, 'a store failed to resume after storage recovered');
      }
    }
  };
  const probe = async () => {
    timer = undefined;
    if (stopped || !full) return;
    if (!lowSpace()) {
      try {
        await writeFileDurable(probeFile, Buffer.alloc(4096));
        fs.rmSync(probeFile, { force: true });
        return recovered();
      } catch (err) {
        fs.rmSync(probeFile, { force: true });
        log.debug({ err: (err as Error).message }, 'storage probe failed');
      }
    }
    delay = Math.min(probeMax, delay * 2);
    arm();
  };
  const arm = () => {
    if (timer || stopped) return;
    timer = clock.setTimeout(() => void probe(), delay);
  };
  const enterFull = (where: string, detail: string) => {
    if (full) return;
    full = { since: clock.now(), where, detail };
    log.error({ where, detail, code: 'STORAGE_FAILED' }, 'the data directory is full or failing: new uploads are refused (507) until space returns');
    arm();
  };

  return {
    assertWritable() {
      const low = lowSpace();
      if (low) enterFull('free space', `${mb(low.free)} free, below storage.minFreeBytes (${mb(opts.minFreeBytes)})`);
      if (full) throw new TuError('STORAGE_FAILED', `The gateway's storage is full (${full.where}: ${full.detail}); nothing was stored. Free space in dataDir (${opts.dataDir}) or lower storage.maxBytes; uploads are accepted again by themselves once space returns.`);
    },
    report(err, where) {
      if (!isStorageError(err)) return false;
      writeErrors++;
      enterFull(where, (err as Error).message.slice(0, 200));
      return true;
    },
    onRecovered(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    status() {
      const s = space();
      return {
        state: full ? 'full' : 'ok',
        ...(full
          ? { reason: `storage full (${full.where}: ${full.detail}): new uploads are refused with 507 until space returns in ${opts.dataDir}`, since: new Date(full.since).toISOString(), where: full.where }
          : {}),
        ...(s ? { freeBytes: s.free, totalBytes: s.total } : {}),
        minFreeBytes: opts.minFreeBytes,
        writeErrors,
      };
    },
    stop() {
      stopped = true;
      if (timer) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
