import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { agentConfigSchema, type AgentConfig } from './schema.js';

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    message: string,
    readonly problems: { field: string; message: string; from?: string }[] = [],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Environment overrides: variable → config path and how to read it. */
export const ENV_OVERRIDES: Record<string, { path: string[]; type: 'string' | 'number' | 'list' }> = {
  TU_GATEWAY_ID: { path: ['gatewayId'], type: 'string' },
  TU_DATA_DIR: { path: ['dataDir'], type: 'string' },
  TU_LOG_LEVEL: { path: ['log', 'level'], type: 'string' },
  TU_MQTT_HOST: { path: ['broker', 'host'], type: 'string' },
  TU_MQTT_PORT: { path: ['broker', 'port'], type: 'number' },
  TU_BUS_SECRET: { path: ['bus', 'secret'], type: 'string' },
  TU_HTTP_HOST: { path: ['http', 'host'], type: 'string' },
  TU_HTTP_PORT: { path: ['http', 'port'], type: 'number' },
  TU_STEPS: { path: ['orchestrator', 'steps'], type: 'list' },
  TU_MAX_CONCURRENT: { path: ['orchestrator', 'maxConcurrent'], type: 'number' },
  TU_DURABILITY: { path: ['orchestrator', 'durability'], type: 'string' },
  TU_UPLINK_URL: { path: ['uplink', 'url'], type: 'string' },
  TU_UPLINK_PASSWORD: { path: ['uplink', 'password'], type: 'string' },
  MODEL_DIR: { path: ['model', 'dir'], type: 'string' },
};

const PROFILE_DIR = path.resolve(import.meta.dirname, '..', 'profiles');

/** Path of a bundled profile (`field-gateway`, `developer`). */
export const profilePath = (name: string): string => path.join(PROFILE_DIR, `${name}.json`);

/**
 * Reads the config file (JSON), applies environment overrides, validates, and either
 * returns the config or throws a ConfigError naming every bad field and where it came from.
 */
export function loadAgentConfig(opts: { file?: string; env?: Env; overrides?: Record<string, unknown> } = {}): AgentConfig {
  const env = opts.env ?? process.env;
  let raw: Record<string, unknown> = {};
  if (opts.file) {
    let text: string;
    try {
      text = fs.readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${opts.file}: ${(err as Error).message}`);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('top level must be an object');
      raw = parsed as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`config file ${opts.file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const origin = new Map<string, string>();
  for (const [name, spec] of Object.entries(ENV_OVERRIDES)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const value = spec.type === 'number' ? (/^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v) : spec.type === 'list' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v;
    setPath(raw, spec.path, value);
    origin.set(spec.path.join('.'), `env ${name}`);
  }
  for (const [k, v] of Object.entries(opts.overrides ?? {})) setPath(raw, k.split('.'), v);
  return validate(agentConfigSchema, raw, opts.file, origin);
}

function validate<S extends z.ZodType>(schema: S, raw: unknown, file: string | undefined, origin: Map<string, string>): z.output<S> {
  const res = schema.safeParse(raw);
  if (res.success) return res.data;
  const problems = res.error.issues.map((i) => {
    const field = i.path.map(String).join('.') || '(root)';
    const from = origin.get(field);
    return { field, message: i.message, ...(from ? { from } : {}) };
  });
  const lines = problems.map((p) => `  - ${p.field}: ${p.message}${p.from ? ` (from ${p.from})` : ''}`);
  throw new ConfigError(`invalid configuration${file ? ` in ${file}` : ''}:\n${lines.join('\n')}`, problems);
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
