import path from 'node:path';
import fs from 'node:fs/promises';
import { Low } from 'lowdb';
import { TuError } from '@tu/shared';
import { isStorageError } from '../fs/storage-guard.js';
import { DurableJSONFile } from './durable-json-adapter.js';
import { deviceDocument, type DeviceDocument, type MachineProfile, type ReferencePhoto } from './schemas.js';

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

/**
 * Device state in lowdb (human-readable JSON on flash, fsynced on every write): the
 * registered machine profile and its reference photos. History of analysed photos is NOT
 * here (it grows): see history.ts.
 */
export async function openDeviceState(dataDir: string, opts: { maxReferences?: number; onWriteError?: (err: Error) => void } = {}): Promise<DeviceState> {
  const maxRefs = opts.maxReferences ?? 20;
  await fs.mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, 'device.json');
  const db = new Low<DeviceDocument>(new DurableJSONFile<DeviceDocument>(file), empty());
  const load = async (): Promise<void> => {
    await db.read();
    const parsed = deviceDocument.safeParse(db.data ?? empty());
    if (!parsed.success) throw new TuError('CONFIG_INVALID', `device state ${file} is invalid: ${parsed.error.issues[0]?.message ?? 'schema'}; fix or remove the file`);
    db.data = parsed.data;
  };
  await load();
  /** Writes the changed document; on failure the previous one is kept in memory too (nothing half-applied), and a full disk is a 507. */
  const save = async (change: (d: DeviceDocument) => void): Promise<void> => {
    const before = db.data;
    const next = structuredClone(before);
    change(next);
    next.updatedAt = new Date().toISOString();
    db.data = next;
    try {
      await db.write();
    } catch (err) {
      db.data = before;
      opts.onWriteError?.(err as Error);
      if (isStorageError(err)) throw new TuError('STORAGE_FAILED', `The gateway's storage is full: the machine profile and reference photos could not be saved (${(err as Error).message}); nothing was changed. Free space in dataDir and try again.`, { cause: err });
      throw err;
    }
  };
  return {
    machine: () => db.data.machine ?? undefined,
    async setMachine(profile) {
      await save((d) => void (d.machine = profile));
      return profile;
    },
    references: () => db.data.references,
    async addReference(ref) {
      const refs = db.data.references.filter((r) => r.sha256 !== ref.sha256);
      const replaced = refs.length !== db.data.references.length;
      refs.push(ref);
      while (refs.length > maxRefs) refs.shift();
      await save((d) => void (d.references = refs));
      return { replaced, count: refs.length };
    },
    reload: load,
  };
}
