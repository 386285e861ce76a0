import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');

export const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

/** Whether something accepts TCP connections on 127.0.0.1:`port` now. */
export const portOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port }, () => {
      c.end();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });

/**
 * Starts a compiled entry point of this repo (`npm run build`) with plain node as a child process and resolves once its
 * output contains `ready`. Output is drained (printed with DEBUG_PROCESSES=1).
 */
export function startProcess(entry: string, args: string[], ready: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(REPO, entry), ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      if (process.env.DEBUG_PROCESSES) process.stdout.write(d);
      if (buf.length < 200_000) buf += d.toString();
      if (buf.includes(ready)) {
        child.stdout!.off('data', onData);
        child.stdout!.on('data', (x: Buffer) => process.env.DEBUG_PROCESSES && process.stdout.write(x));
        child.off('exit', onExit);
        resolve(child);
      }
    };
    const onExit = (code: number | null) => reject(new Error(`${entry} exited early with ${code}: ${buf.slice(-3000)}`));
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => {
      if (buf.length < 200_000) buf += d.toString();
      if (process.env.DEBUG_PROCESSES) process.stderr.write(d);
    });
    child.once('exit', onExit);
  });
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}
