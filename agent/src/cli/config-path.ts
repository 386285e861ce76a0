/**
 * Which config file a command reads: --config, --profile, TU_CONFIG, then the installed
 * /etc/tu-agent/config.json (a release on a gateway), then a bundled profile
 * (field-gateway in a release, developer in a checkout).
 */
import fs from 'node:fs';
import { ConfigError, loadAgentConfig, profilePath, type AgentConfig } from '@tu/firmware-config';
import { appLayout } from '../release/layout.js';
import { systemPaths } from './system-paths.js';

export interface ConfigChoice {
  config?: string | undefined;
  profile?: string | undefined;
  root?: string | undefined;
}

export function configFile(choice: ConfigChoice, env: NodeJS.ProcessEnv = process.env): string {
  if (choice.config) return choice.config;
  if (choice.profile) return profilePath(choice.profile);
  if (env.TU_CONFIG) return env.TU_CONFIG;
  if (appLayout().release) {
    const installed = systemPaths(choice.root).configFile;
    return fs.existsSync(installed) ? installed : profilePath('field-gateway');
  }
  return profilePath('developer');
}

/** Loads and validates the chosen config; a ConfigError is printed by the caller (exit 2). */
export function loadChosenConfig(choice: ConfigChoice): AgentConfig {
  return loadAgentConfig({ file: configFile(choice) });
}

export { ConfigError };
