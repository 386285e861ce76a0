import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { REPO_ROOT } from './real.js';

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.join(REPO_ROOT, 'screenshots');
export const AGENT_UI_DIST = path.join(REPO_ROOT, 'agent/ui/dist');

/**
 * Debian's Chromium, headless. playwright's launch() gives every browser a fresh temporary
 * profile (its own --user-data-dir under the OS temp dir, removed on close).
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

/** Builds a front end with Vite unless its dist is already there (npm test builds it first). */
export async function ensureBuilt(root: string): Promise<void> {
  if (fs.existsSync(path.join(root, 'dist', 'index.html'))) return;
  const { build } = await import('vite');
  await build({ root, logLevel: 'warn', configFile: path.join(root, 'vite.config.ts') });
}

export function screenshotPath(name: string): string {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  return path.join(SCREENSHOTS, name);
}
