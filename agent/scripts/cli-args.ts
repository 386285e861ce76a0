/** Tiny shared helpers for the vision scripts. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const defaultModelDir = (): string =>
  process.env['MODEL_DIR'] ?? path.resolve(repoRoot, '../shared/models/mobilenet_v2_100_224_quant');

export function fail(message: string, code = 2): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(code);
}

/**
 * The script's options (node:util parseArgs): `--help` or `-h` prints `usage` and exits 0; an
 * unknown or malformed option fails with its reason and the usage (exit 2), not with Node's
 * stack trace of an uncaught ERR_PARSE_ARGS_UNKNOWN_OPTION.
 */
export function scriptArgs<const O extends NonNullable<ParseArgsConfig['options']>>(options: O, usage: string) {
  if (process.argv.slice(2).some((x) => x === '--help' || x === '-h')) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  try {
    return parseArgs({ options }).values;
  } catch (err) {
    return fail(`${(err as Error).message}\n${usage}`);
  }
}

export function intArg(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n)) fail(`--${name} must be an integer, got '${v}'`);
  return n;
}

export function numArg(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) fail(`--${name} must be a number, got '${v}'`);
  return n;
}

export function oneOf<T extends string>(v: string | undefined, name: string, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(v)) fail(`--${name} must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}
