import fs from 'node:fs';
import path from 'node:path';
import { buildConfigJsonSchema } from '@tu/firmware-config';
import { buildAsyncApi, buildJsonSchemas, ERROR_CODES, gatewayContractMarkdown } from '@tu/shared';

export const ROOT = path.resolve(import.meta.dirname, '..');

/** Every generated document: repo-relative path → content. */
export function generatedDocs(): Map<string, string> {
  const out = new Map<string, string>();
  const j = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
  out.set('docs/asyncapi.json', j(buildAsyncApi()));
  for (const [type, schema] of Object.entries(buildJsonSchemas())) out.set(`docs/schemas/${type}.json`, j(schema));
  out.set('firmware-config/schema/agent-config.schema.json', j(buildConfigJsonSchema()));
  out.set('docs/errors.md', errorCatalogue());
  out.set('relay/README.md', withSection(fs.readFileSync(path.join(ROOT, 'relay/README.md'), 'utf8'), 'gateway-contract', gatewayContractMarkdown()));
  return out;
}

/** A hand-written document with one generated section between `<!-- NAME:begin -->` and `<!-- NAME:end -->`. */
export function withSection(doc: string, name: string, body: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const b = doc.indexOf(begin);
  const e = doc.indexOf(end);
  if (b < 0 || e < b) throw new Error(`markers ${begin} … ${end} are missing`);
  return `${doc.slice(0, b + begin.length)}\n${body}\n${doc.slice(e)}`;
}

/** The error catalogue (shared/src/errors.ts) for API clients: code, HTTP status, default message. */
function errorCatalogue(): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  return [
    '# Error codes',
    '',
    'Generated from `shared/src/errors.ts` by `npm run docs:generate`; do not edit.',
    '',
    'Every refused HTTP request of the agent and the relay answers `{ "error": { "code", "message" } }`',
    'with the status below; bus failure reasons (`*.failed`, `analysis.failed`, dead letters) carry the',
    'same codes. The message is the default one: a refusal may say more (which field, which limit).',
    'Messages are written for the person who sees them (upload refusals appear as is in the technician UI),',
    'so a program should act on the code, never on the message.',
    '',
    '| code | HTTP status | message |',
    '|---|---|---|',
    ...Object.entries(ERROR_CODES).map(([code, e]) => `| \`${code}\` | ${e.status} | ${cell(e.message)} |`),
    '',
  ].join('\n');
}
