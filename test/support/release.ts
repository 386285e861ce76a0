/**
 * Release artifacts for the release suites: built once per test process (every suite runs in
 * one process, scripts/run-tests.ts) with scripts/release/package.ts, unpacked outside the
 * repo, and run the way a gateway runs them: `env -i`, a fresh HOME, no node_modules around.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MODEL_DIR, REPO_ROOT } from './data.js';

export type Arch = 'x64' | 'arm64';
const OUT = fs.mkdtempSync(path.join(os.tmpdir(), 'tu-release-'));
const built = new Map<string, string>();

/** dist tarball for `version` and `arch`, built on first use (needs `npm run build` first, as npm test does). */
export function artifact(version: string, arch: Arch = 'x64'): string {
  const key = `${version}/${arch}`;
  const hit = built.get(key);
  if (hit) return hit;
  const out = path.join(OUT, version);
  execFileSync(process.execPath, ['--import', 'tsx', 'scripts/release/package.ts', '--arch', arch, '--version', version, '--out', out, '--model', MODEL_DIR], {
    cwd: REPO_ROOT,
    stdio: ['ignore', process.env.DEBUG_PROCESSES ? 'inherit' : 'ignore', 'inherit'],
  });
  const tarball = path.join(out, `tu-agent-${version}-linux-${arch}.tar.gz`);
  built.set(key, tarball);
  return tarball;
}

/** Unpacks a tarball into a new empty folder outside the repo; returns the `tu-agent` folder. */
export function unpack(tarball: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tu-gw-'));
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  return path.join(dir, 'tu-agent');
}

/** A fresh, empty HOME and working directory, as on a gateway. */
export function freshHome(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tu-home-'));
}

/** `env -i HOME=… VARS… <cmd…>`: nothing of this process's environment leaks in. */
export function envI(vars: Record<string, string>, cmd: string[], home = freshHome()): string[] {
  return ['env', '-i', `HOME=${home}`, ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), ...cmd];
}

export function runToEnd(argv: string[], cwd = freshHome()): { code: number; out: string } {
  try {
    const out = execFileSync(argv[0]!, argv.slice(1), { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, out };
  } catch (err) {
    const e = err as { status: number | null; stdout?: string; stderr?: string };
    return { code: e.status ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Starts a long-running command; output kept for failure messages. */
export function startDetached(argv: string[], cwd = freshHome()): ChildProcess & { output: () => string } {
  const child = spawn(argv[0]!, argv.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  const keep = (d: Buffer) => {
    if (process.env.DEBUG_PROCESSES) process.stdout.write(d);
    buf = (buf + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return Object.assign(child, { output: () => buf });
}

/**
 * `tu-agent token` of an unpacked artifact under env -i with only `vars` (TU_GATEWAY_ID,
 * TU_DATA_DIR): how an installer on the device gets a technician token. Returns the token.
 */
export function artifactToken(bin: string[], vars: Record<string, string>, ...args: string[]): string {
  const r = runToEnd(envI(vars, [...bin, 'token', ...args]));
  if (r.code !== 0) throw new Error(`tu-agent token failed (${r.code}): ${r.out}`);
  const token = r.out.split('\n').find((l) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(l.trim()));
  if (!token) throw new Error(`tu-agent token printed no token: ${r.out}`);
  return token.trim();
}

/** `token`: a technician token, so that the health answer carries its details (reasons, services). */
export async function waitHealth(port: number, timeoutMs: number, child?: ChildProcess & { output: () => string }, token?: string): Promise<{ version: string; status: string; body: Record<string, unknown> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode}: ${child.output().slice(-3000)}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/health`, { signal: AbortSignal.timeout(1000), ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
      if (res.status === 200) {
        const body = (await res.json()) as { status: string; agent: { version: string } };
        return { version: body.agent.version, status: body.status, body: body as unknown as Record<string, unknown> };
      }
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`no healthy agent on ${port} within ${timeoutMs} ms${child ? `: ${child.output().slice(-3000)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill(signal);
  return exited;
}
