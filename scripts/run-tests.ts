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
// uvu counts a suite whose before hook threw as not run, not as failed, and leaves the exit code
// at 0 (its runner returns from a finally block): read its closing totals and fail on a shortfall.
const totals = { total: 0, passed: 0 };
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
  const total = /Total:\s+(\d+)/.exec(text);
  const passed = /Passed:\s+(\d+)/.exec(text);
  if (total) totals.total = Number(total[1]);
  if (passed) totals.passed = Number(passed[1]);
  return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stdout.write;
await run(ctx.suites, { bail: false });
process.stdout.write = write;
let code = typeof process.exitCode === 'number' ? process.exitCode : 0;
if (totals.passed < totals.total) {
  console.log(`${totals.total - totals.passed} test(s) did not pass (a suite whose setup failed runs none of its tests): failing the run`);
  code ||= 1;
}
const handles = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles().filter((h) => ![process.stdout, process.stderr, process.stdin].includes(h as never));
if (handles.length) console.log(`(open handles after the suites: ${handles.map((h) => h.constructor.name).join(', ')})`);
process.exit(code);
