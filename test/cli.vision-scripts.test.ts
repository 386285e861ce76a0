/**
 * The vision scripts a maintainer runs by hand (npm run train-head, eval, build:head) answer
 * `--help` with their usage and refuse an unknown option with its name and the usage, exit 2.
 * Before agent/scripts/cli-args.ts scriptArgs, `--help` and any typo ended in Node's stack trace
 * of an uncaught ERR_PARSE_ARGS_UNKNOWN_OPTION.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from './support/real.js';

const TSX = path.join(REPO_ROOT, 'node_modules/.bin/tsx');
const run = (script: string, args: string[]) => spawnSync(TSX, [path.join(REPO_ROOT, 'agent/scripts', script), ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });

for (const [script, npm] of [
  ['train-head.ts', 'train-head'],
  ['eval.ts', 'eval'],
  ['build-head.ts', 'build:head'],
] as const) {
  test(`${npm}: --help prints the usage (exit 0); an unknown option names it, with the usage (exit 2)`, () => {
    const help = run(script, ['--help']);
    assert.is(help.status, 0, help.stderr);
    assert.match(help.stdout, `usage: npm run ${npm} --`);
    const typo = run(script, ['--imgaes', 'x']);
    assert.is(typo.status, 2, typo.stderr);
    assert.match(typo.stderr, "error: Unknown option '--imgaes'");
    assert.match(typo.stderr, `usage: npm run ${npm} --`);
    assert.not.match(typo.stderr, /at parseArgs|node:internal/);
  });
}

test.run();
