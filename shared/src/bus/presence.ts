import { z } from 'zod';
import { COMMAND_TYPES, SERVICES } from '../catalog.js';

/** Retained on tu/{gw}/sys/presence/{service}/{instance}; an empty retained payload (last will) means gone. */
export const presenceSchema = z.object({
  service: z.enum(SERVICES),
  instanceId: z.string().min(1).max(128),
  status: z.literal('online'),
  handles: z.array(z.enum(COMMAND_TYPES as [string, ...string[]])).max(20),
  startedAt: z.iso.datetime({ offset: true }),
  pid: z.number().int().nonnegative(),
  host: z.string().max(256),
  version: z.string().max(64),
});
export type Presence = z.infer<typeof presenceSchema>;
