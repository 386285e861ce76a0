import { z } from 'zod';
import { registeredMachine, sha256 } from '@tu/shared';

/** Body of PUT /api/v1/machine: the machine registered to this gateway. */
export const machineProfileInput = registeredMachine.strict();
export type MachineProfile = z.infer<typeof machineProfileInput>;

export const referencePhoto = z.object({
  sha256,
  phash: z.string().regex(/^[0-9a-f]{16}$/).optional(),
  embedding: z.array(z.number().finite()).min(1).max(4096),
  machineType: z.string().max(64).optional(),
  addedAt: z.iso.datetime({ offset: true }),
});
export type ReferencePhoto = z.infer<typeof referencePhoto>;

/** The device state document (device.json, state.ts): small by construction (one profile, a bounded list of references). */
export const deviceDocument = z.object({
  version: z.literal(1),
  machine: machineProfileInput.nullable(),
  updatedAt: z.iso.datetime({ offset: true }).nullable(),
  references: z.array(referencePhoto),
});
export type DeviceDocument = z.infer<typeof deviceDocument>;
