import path from 'node:path';
import fs from 'node:fs/promises';
import { Low } from 'lowdb';
import { TuError } from '@tu/shared';
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
export async function openDeviceState(dataDir: string, opts: { maxReferences?: number } = {}): Promise<DeviceState> {
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
  return {
    machine: () => db.data.machine ?? undefined,
    async setMachine(profile) {
      db.data.machine = profile;
      db.data.updatedAt = new Date().toISOString();
      await db.write();
      return profile;
    },
    references: () => db.data.references,
    async addReference(ref) {
      const refs = db.data.references.filter((r) => r.sha256 !== ref.sha256);
      const replaced = refs.length !== db.data.references.length;
      refs.push(ref);
      while (refs.length > maxRefs) refs.shift();
      db.data.references = refs;
      db.data.updatedAt = new Date().toISOString();
      await db.write();
      return { replaced, count: refs.length };
    },
    reload: load,
  };
}
