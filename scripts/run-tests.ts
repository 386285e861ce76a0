/**
 * Runs the uvu suites in test/ in one process (like `uvu test`), then exits with their
 * status even if a library left a handle open — and names such handles, so a leak is
 * visible instead of hanging CI. Usage: tsx scripts/run-tests.ts [pattern]
 */
import path from 'node:path';
import { parse } from 'uvu/parse';
import { run } from 'uvu/run';

const root = path.resolve(import.meta.dirname, '..');
const ctx = await parse(path.join(root, 'test'), process.argv[2], { ignore: ['fixtures', 'support/'] });
await run(ctx.suites, { bail: false });
const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
const handles = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles().filter((h) => ![process.stdout, process.stderr, process.stdin].includes(h as never));
if (handles.length) console.log(`(open handles after the suites: ${handles.map((h) => h.constructor.name).join(', ')})`);
process.exit(code);
