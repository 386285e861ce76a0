import { z } from 'zod';
import { COMMAND_TYPES, commandsHandledBy, SERVICES } from '../catalog.js';
import { isoTime } from '../schemas/common.js';

/**
 * Retained on tu/{gw}/sys/presence/{service}/{instance}; an empty retained payload (last will)
 * means gone. An instance may announce only commands its service handles (the catalogue): the
 * orchestrator sends commands to whoever announces them, and the broker would then keep them
 * from a service not allowed to read them, so a false claim made steps time out.
 */
export const presenceSchema = z
  .object({
  service: z.enum(SERVICES),
  instanceId: z.string().min(1).max(128),
  status: z.literal('online'),
  handles: z.array(z.enum(COMMAND_TYPES as [string, ...string[]])).max(20),
  startedAt: isoTime,
  pid: z.number().int().nonnegative(),
  host: z.string().max(256),
  version: z.string().max(64),
  })
  .superRefine((p, ctx) => {
    const own: string[] = commandsHandledBy(p.service);
    for (const h of p.handles) {
      if (!own.includes(h)) ctx.addIssue({ code: 'custom', path: ['handles'], message: `${p.service} does not handle ${h} (the catalogue gives it ${own.join(', ') || 'no commands'})` });
    }
  });
export type Presence = z.infer<typeof presenceSchema>;
