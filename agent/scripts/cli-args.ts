/** Tiny shared helpers for the vision scripts. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const defaultModelDir = (): string =>
  process.env['MODEL_DIR'] ?? path.resolve(repoRoot, '../shared/models/mobilenet_v2_100_224_quant');

export function fail(message: string, code = 2): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(code);
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
