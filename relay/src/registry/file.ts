import fs from 'node:fs';
import { z } from 'zod';
import { TuError } from '@tu/shared';
import { ID_RE } from '../config.js';
import type { Storage } from '../storage/types.js';
import { hashSecret } from './secrets.js';

export const registryFileSchema = z
  .object({
    tenants: z.array(z.object({ id: z.string().regex(ID_RE), name: z.string().max(256).optional() }).strict()).default([]),
    gateways: z
      .array(
        z
          .object({
            id: z.string().regex(ID_RE),
            tenant: z.string().regex(ID_RE),
            name: z.string().max(256).optional(),
            /** An scrypt hash as printed by `gateways add|rotate|restore --print-hash`, or a clear secret (dev only). */
            secretHash: z.string().startsWith('scrypt$').optional(),
            secret: z.string().min(16).optional(),
          })
          .strict()
          .refine((g) => g.secretHash || g.secret, { message: 'set secretHash (or secret, for development)' }),
      )
      .default([]),
  })
  .strict();

/** Imports tenants and gateways from a JSON file at start; entries already registered are left as they are. */
export async function importRegistryFile(file: string, storage: Storage): Promise<{ tenants: number; gateways: number }> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new TuError('CONFIG_UNREADABLE', `registry file ${file}: ${(err as Error).message}`);
  }
  const r = registryFileSchema.safeParse(raw);
  if (!r.success) throw new TuError('CONFIG_INVALID', `registry file ${file}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const known = new Set((await storage.listTenants()).map((t) => t.id));
  let tenants = 0;
  let gateways = 0;
  for (const t of r.data.tenants) {
    if (known.has(t.id)) continue;
    await storage.addTenant({ id: t.id, name: t.name ?? null });
    known.add(t.id);
    tenants++;
  }
  for (const g of r.data.gateways) {
    if (await storage.getGateway(g.id)) continue;
    await storage.addGateway({ id: g.id, tenantId: g.tenant, name: g.name ?? null, secretHash: g.secretHash ?? (await hashSecret(g.secret!)) });
    gateways++;
  }
  return { tenants, gateways };
}
