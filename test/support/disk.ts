import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { BusClient } from '@tu/shared';
import { bearerFor, startProcessHandlers, tmpDir } from './harness.js';
import { freePort, startProcess, writeProcessAgentConfig } from './processes.js';

/** Helpers of the storage suites (security.disk-full.test.ts): a small real filesystem and an agent child process on it. */

/** Mounts a tmpfs of `mb` MiB on a new directory; undefined when this sandbox may not mount (not root). */
export function mountTmpfs(mb: number): string | undefined {
  const dir = tmpDir('tu-disk-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m`, 'tmpfs', dir], { stdio: 'pipe' });
    return dir;
  } catch (err) {
    console.log(`  cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]}): run this suite as root`);
    fs.rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
}

export function unmount(dir: string): void {
  execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Writes a file until the filesystem is full (ENOSPC); returns its path. */
export function fillDisk(dir: string): string {
  const file = path.join(dir, 'filler.bin');
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 7);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    // The last partial block too.
    for (let n = 4096; n >= 1; n = Math.floor(n / 2)) {
      try {
        for (;;) fs.writeSync(fd, chunk.subarray(0, n));
      } catch {
        // next smaller size
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

/** A distinct JPEG photo of about `kb` KiB (noise does not compress; the store keeps each content once). */
export async function noisePhoto(kb: number): Promise<Buffer> {
  const side = Math.round(Math.sqrt((kb * 1024) / 1.1));
  return sharp(randomBytes(side * side * 3), { raw: { width: side, height: side, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
}

export const SECRET = 'disk-test-secret-disk-test-secret-00001';

/** Starts the agent (compiled) as a child process on `dataDir`; the analysis steps run in this process (see startHandlers). */
export async function startDiskAgent(dataDir: string, extra: Record<string, unknown>): Promise<{ child: ChildProcess; url: string; busPort: number; output: () => string }> {
  const busPort = await freePort();
  const httpPort = await freePort();
  const configFile = writeProcessAgentConfig(path.join(tmpDir('tu-disk-config-'), 'agent.json'), {
    gatewayId: 'gw-disk',
    dataDir,
    busPort,
    httpPort,
    extra: { orchestrator: { durability: 'full', maxConcurrent: 4, plan: { recognition: { timeoutMs: 60_000 }, comparison: { timeoutMs: 60_000 }, metadata: { timeoutMs: 60_000 } } }, ...extra },
  });
  const child = await startProcess('agent/dist/main.js', ['--config', configFile], '"agent started"', { TU_BUS_SECRET: SECRET, LOG_LEVEL: 'info' });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const url = `http://127.0.0.1:${httpPort}`;
  signedIn.set(url, await bearerFor('gw-disk', dataDir));
  return { child, url, busPort, output: () => out };
}

/** Step handlers over TCP answering every command with the default result, once `gate` resolves. */
export function startHandlers(busPort: number, gate: () => Promise<void>): Promise<BusClient[]> {
  return startProcessHandlers({ gatewayId: 'gw-disk', secret: SECRET, port: busPort, suffix: 'disk', before: gate });
}

/**
 * The agent's HTTP API as these suites use it (one place, so authentication can be added
 * here alone). Never throws on an HTTP status: the suites assert them.
 */
/** A technician token per agent started by startDiskAgent (by its base URL): every call is signed in. */
const signedIn = new Map<string, { authorization: string }>();

export async function api(base: string, method: 'GET' | 'POST', route: string, body?: Buffer): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const res = await fetch(base + route, {
    method,
    headers: { ...signedIn.get(base), ...(body ? { 'content-type': 'image/jpeg' } : {}) },
    ...(body ? { body } : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // /metrics is text
  }
  return { status: res.status, json, text };
}
