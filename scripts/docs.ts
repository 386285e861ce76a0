import path from 'node:path';
import { buildConfigJsonSchema } from '@tu/firmware-config';
import { buildAsyncApi, buildJsonSchemas } from '@tu/shared';

export const ROOT = path.resolve(import.meta.dirname, '..');

/** Every generated document: repo-relative path → content. */
export function generatedDocs(): Map<string, string> {
  const out = new Map<string, string>();
  const j = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
  out.set('docs/asyncapi.json', j(buildAsyncApi()));
  for (const [type, schema] of Object.entries(buildJsonSchemas())) out.set(`docs/schemas/${type}.json`, j(schema));
  out.set('firmware-config/schema/agent-config.schema.json', j(buildConfigJsonSchema()));
  return out;
}
