/**
 * Where the agent's shipped files are. Two layouts exist:
 * - a checkout: this file runs as agent/dist/release/layout.js; the model comes from config
 *   (the developer profile points at ../shared/models), the UI from agent/ui/dist;
 * - the release artifact (scripts/release/package.ts): the bundle runs as <app>/lib/main.js,
 *   with <app>/release.json, <app>/models/<model id>/ (model + default head) and <app>/ui/.
 * A release is recognised by its release.json, never by guessing from paths.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/**
 * A release version, semver-like (`0.2.0`, `0.1.0-rel.broken`, `1.0.0+build.5`). It names the
 * release's folder under /opt/tu-agent, so it can hold no `/` and no `..`: `tu-agent update`
 * reads it from the tarball, and `../../etc` once made it replace and then delete /etc.
 */
export const RELEASE_VERSION = /^\d{1,9}\.\d{1,9}\.\d{1,9}(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

export const ReleaseInfoSchema = z.object({
  name: z.literal('tu-agent'),
  version: z.string().max(64).regex(RELEASE_VERSION, 'a version like 1.2.3 or 1.2.3-rc.1 (digits, letters, dots, - and +; no / or ..)'),
  commit: z.string().min(1),
  builtAt: z.string().min(1),
  arch: z.enum(['x64', 'arm64']),
  node: z.string().min(1),
  model: z.object({ id: z.string(), version: z.string(), file: z.string() }),
  head: z.object({ id: z.string(), version: z.string(), backbone: z.string() }).nullable(),
});
export type ReleaseInfo = z.infer<typeof ReleaseInfoSchema>;

export interface AppLayout {
  /** The release folder (`<app>`), or null in a checkout. */
  appDir: string | null;
  release: ReleaseInfo | null;
  /** The shipped model directory (release only). */
  modelDir: string | null;
  uiDir: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));

function readRelease(file: string): ReleaseInfo | null {
  if (!fs.existsSync(file)) return null;
  return ReleaseInfoSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
}

let cached: AppLayout | undefined;

export function appLayout(): AppLayout {
  if (cached) return cached;
  // The bundle's main.js (and so this code) sits in <app>/lib.
  const appDir = path.resolve(here, '..');
  const release = readRelease(path.join(appDir, 'release.json'));
  if (release) {
    // The default head sits beside the model as head.json (services/run.ts modelPaths).
    cached = { appDir, release, modelDir: path.join(appDir, 'models', release.model.id), uiDir: path.join(appDir, 'ui') };
  } else {
    // agent/dist/release → agent/ui/dist
    cached = { appDir: null, release: null, modelDir: null, uiDir: path.resolve(here, '../../ui/dist') };
  }
  return cached;
}

let version: string | undefined;

/** The agent's version: the release's, or agent/package.json's in a checkout (read once; health asks on every request). */
export function agentVersion(): string {
  if (version) return version;
  const layout = appLayout();
  version = layout.release
    ? layout.release.version
    : z.object({ version: z.string() }).parse(JSON.parse(fs.readFileSync(path.resolve(here, '../../package.json'), 'utf8'))).version;
  return version;
}
