import path from 'node:path';
import { z } from 'zod';
import { loadConfigFile, type Env, type EnvOverride } from '@tu/shared';
import { agentConfigSchema, type AgentConfig } from './schema.js';

export { ConfigError } from '@tu/shared';

/** Environment overrides: variable → config path and how to read it. */
export const ENV_OVERRIDES: Record<string, EnvOverride> = {
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
  return loadConfigFile(agentConfigSchema, { what: 'configuration', ...opts, envOverrides: ENV_OVERRIDES });
}

/**
 * Reads a config file as it is written (JSON object, no defaults, no environment), for a
 * command that edits it and writes it back (`tu-agent provision`). An unreadable file or bad
 * JSON is the same ConfigError, naming the file, as when the agent loads it.
 */
export function readAgentConfigObject(file: string): Record<string, unknown> {
  return loadConfigFile(z.record(z.string(), z.unknown()), { what: 'configuration', file, env: {}, envOverrides: {} });
}
