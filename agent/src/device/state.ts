import path from 'node:path';
import fs from 'node:fs/promises';
import { TuError } from '@tu/shared';
import { removeStaleTemps, writeFileDurable } from '../fs/durable.js';
import { moveAside, type SetAside } from '../fs/set-aside.js';
import { isStorageError } from '../fs/storage-guard.js';
import { deviceDocument, machineProfileInput, referencePhoto, type DeviceDocument, type MachineProfile, type ReferencePhoto } from './schemas.js';

export interface DeviceState {
  machine(): MachineProfile | undefined;
  setMachine(profile: MachineProfile): Promise<MachineProfile>;
  references(): readonly ReferencePhoto[];
  /** Adds (or replaces, by sha256) a reference photo; the oldest go beyond maxReferences. */
  addReference(ref: ReferencePhoto): Promise<{ replaced: boolean; count: number }>;
  /** Re-reads the file (a service in another process sees updates made by the agent). */
  reload(): Promise<void>;
}

const empty = (): DeviceDocument => ({ version: 1, machine: null, updatedAt: null, references: [] });

/** A document as read: whole, or what could be kept of a damaged one and why it was damaged. */
type Read = { doc: DeviceDocument; damaged?: { reason: string; kept?: string } };

/**
 * What can be kept of the file's text. A document that fails its schema keeps the machine profile
 * and each reference photo that are valid on their own: one bad reference must not cost the
 * registered machine.
 */
function readDocument(text: string): Read {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { doc: empty(), damaged: { reason: text.trim() === '' || /^\0+$/.test(text) ? 'empty' : `not JSON: ${(err as Error).message}` } };
  }
  const whole = deviceDocument.safeParse(raw);
  if (whole.success) return { doc: whole.data };
  const r = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const machine = machineProfileInput.safeParse(r['machine']);
  const refs = Array.isArray(r['references']) ? (r['references'] as unknown[]) : [];
  const kept = refs.flatMap((x) => {
    const p = referencePhoto.safeParse(x);
    return p.success ? [p.data] : [];
  });
  const issue = whole.error.issues[0];
  const parts = [...(machine.success ? ['the machine profile'] : []), ...(refs.length > 0 ? [`${kept.length} of ${refs.length} reference photos`] : [])];
  return {
    doc: { ...empty(), machine: machine.success ? machine.data : null, references: kept },
    damaged: { reason: `invalid: ${issue ? `${issue.path.join('.') || 'document'}: ${issue.message}` : 'schema'}`, ...(parts.length > 0 ? { kept: parts.join(' and ') } : {}) },
  };
}

/**
 * Device state (human-readable JSON on flash, written durably: temp file, fsync, rename, fsync of
 * the directory): the registered machine profile and its reference photos. History of analysed
 * photos is NOT here (it grows): see history.ts.
 *
 * A damaged file at start (flash corruption, a power cut the filesystem did not survive) is moved
 * aside as `device.json.bad-{time}` and what could be read of it is kept (`onSetAside` tells the
 * agent, whose health names it): refusing it kept the whole gateway from starting. A damaged file
 * met by `reload` (another process's view) leaves the state as last read.
 */
export async function openDeviceState(
  dataDir: string,
  opts: { maxReferences?: number; onWriteError?: (err: Error) => void; onSetAside?: (s: SetAside) => void; logger?: { warn(o: object, msg: string): void } } = {},
): Promise<DeviceState> {
  const maxRefs = opts.maxReferences ?? 20;
  await fs.mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, 'device.json');
  // Temp files of writes a power cut interrupted (writeFileDurable names them after the file).
  await removeStaleTemps(file);
  const readFile = async (): Promise<Read> => {
    try {
      return readDocument(await fs.readFile(file, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { doc: empty() };
      throw err;
    }
  };
  const write = (doc: DeviceDocument) => writeFileDurable(file, JSON.stringify(doc, null, 2));

  const first = await readFile();
  let data = first.doc;
  if (first.damaged) {
    let movedTo: string | undefined;
    try {
      movedTo = moveAside(file);
    } catch (err) {
      // Another process (a service started beside the agent) moved it first: read what it wrote.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new TuError('STORAGE_FAILED', `device state ${file} is damaged (${first.damaged.reason}) and cannot be moved aside: ${(err as Error).message}`);
      data = (await readFile()).doc;
    }
    if (movedTo) {
      await write(data);
      const s: SetAside = { what: 'device state (machine profile and reference photos)', file, movedTo, reason: first.damaged.reason, ...(first.damaged.kept ? { kept: first.damaged.kept } : {}), at: new Date().toISOString() };
      opts.logger?.warn(s, 'device state was damaged; moved it aside and kept what could be read');
      opts.onSetAside?.(s);
    }
  }

  // One change at a time, each on the state its predecessor left: two changes racing each took
  // their own "before" and a failed write could roll back the other's (written or not).
  let chain: Promise<unknown> = Promise.resolve();
  /** Writes the changed document, then makes it the state: on failure nothing changed, and a full disk is a 507. */
  const save = <T>(change: (d: DeviceDocument) => T): Promise<T> => {
    const run = chain.then(async () => {
      const next = structuredClone(data);
      const out = change(next);
      next.updatedAt = new Date().toISOString();
      try {
        await write(next);
      } catch (err) {
        opts.onWriteError?.(err as Error);
        if (isStorageError(err)) throw new TuError('STORAGE_FAILED', `The gateway's storage is full: the machine profile and reference photos could not be saved (${(err as Error).message}); nothing was changed. Free space in dataDir and try again.`, { cause: err });
        throw err;
      }
      data = next;
      return out;
    });
    chain = run.catch(() => undefined);
    return run;
  };
  return {
    machine: () => data.machine ?? undefined,
    async setMachine(profile) {
      await save((d) => void (d.machine = profile));
      return profile;
    },
    references: () => data.references,
    addReference: (ref) =>
      save((d) => {
        const refs = d.references.filter((r) => r.sha256 !== ref.sha256);
        const replaced = refs.length !== d.references.length;
        refs.push(ref);
        while (refs.length > maxRefs) refs.shift();
        d.references = refs;
        return { replaced, count: refs.length };
      }),
    async reload() {
      const r = await readFile();
      if (r.damaged) return void opts.logger?.warn({ file, reason: r.damaged.reason }, 'device state unreadable on reload; keeping the state last read');
      data = r.doc;
    },
  };
}
