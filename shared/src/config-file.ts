import fs from 'node:fs';
import type { z } from 'zod';

export type Env = Record<string, string | undefined>;

/** An environment variable that overrides one config field. */
export interface EnvOverride {
  path: string[];
  type: 'string' | 'number' | 'list';
}

export interface ConfigProblem {
  field: string;
  message: string;
  from?: string;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    message: string,
    readonly problems: ConfigProblem[] = [],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Reads a JSON config file, applies environment overrides and programmatic overrides
 * (dotted paths), validates with `schema`, and either returns the config or throws a
 * ConfigError naming every bad field and where its value came from.
 */
export function loadConfigFile<S extends z.ZodType>(
  schema: S,
  opts: { what: string; file?: string; env?: Env; envOverrides: Record<string, EnvOverride>; overrides?: Record<string, unknown> },
): z.output<S> {
  const env = opts.env ?? process.env;
  const raw = opts.file ? readJsonObject(opts.file) : {};
  const origin = new Map<string, string>();
  for (const [name, spec] of Object.entries(opts.envOverrides)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    setPath(raw, spec.path, envValue(v, spec.type));
    origin.set(spec.path.join('.'), `env ${name}`);
  }
  for (const [k, v] of Object.entries(opts.overrides ?? {})) setPath(raw, k.split('.'), v);
  const res = schema.safeParse(raw);
  if (res.success) return res.data;
  const problems: ConfigProblem[] = res.error.issues.map((i) => {
    const field = i.path.map(String).join('.') || '(root)';
    const from = originOf(origin, field);
    return { field, message: i.message, ...(from ? { from } : {}) };
  });
  const lines = problems.map((p) => `  - ${p.field}: ${p.message}${p.from ? ` (from ${p.from})` : ''}`);
  throw new ConfigError(`invalid ${opts.what}${opts.file ? ` in ${opts.file}` : ''}:\n${lines.join('\n')}`, problems);
}

/**
 * Where the value at `field` came from: the override of that path or of a path above it. An
 * error inside a list names the entry (`ingress.rabbitmq.urls.0`) while the variable set the list.
 */
function originOf(origin: Map<string, string>, field: string): string | undefined {
  let best: { path: string; from: string } | undefined;
  for (const [p, from] of origin) {
    if ((field === p || field.startsWith(`${p}.`)) && (!best || p.length > best.path.length)) best = { path: p, from };
  }
  return best?.from;
}

function readJsonObject(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('top level must be an object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

function envValue(v: string, type: EnvOverride['type']): unknown {
  if (type === 'number') return /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v;
  if (type === 'list') return v.split(',').map((s) => s.trim()).filter(Boolean);
  return v;
}

function setPath(obj: Record<string, unknown>, p: string[], value: unknown): void {
  let cur = obj;
  for (const key of p.slice(0, -1)) {
    const next = cur[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[p[p.length - 1]!] = value;
}
