/**
 * Runs every bench/*.bench.ts (default export) in turn: `npm run bench`, or
 * `npm run bench -- orchestrator pipeline` for the ones whose file name matches any of the
 * words. The figures the benches record against their aims (bench/aims.ts) are printed
 * together at the end. A bench may return a one-line summary for checks outside the project
 * (bench/fleet.bench.ts): those lines come last, after the aims table.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { aimsTable } from './aims.js';

const dir = import.meta.dirname;
const filters = process.argv.slice(2);
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts') && (filters.length === 0 || filters.some((w) => f.includes(w))))
  .sort();
console.log(`TU Edge benchmarks — ${new Date().toISOString()} — node ${process.version}, ${(await import('node:os')).cpus().length} cores`);
const summaries: string[] = [];
for (const f of files) {
  console.log(`\n=== ${f} ===`);
  const mod = (await import(pathToFileURL(path.join(dir, f)).href)) as { default: () => Promise<void | string> };
  const summary = await mod.default();
  if (typeof summary === 'string') summaries.push(summary);
}
const aims = aimsTable();
if (aims) console.log(`\n=== aims (this run) ===\n${aims}`);
if (summaries.length) console.log(`\n${summaries.join('\n')}`);
process.exit(0);
