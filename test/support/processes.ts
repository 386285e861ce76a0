import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');

/** The first port the kernel hands out as the source of an outgoing connection (Linux default 32768). */
function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 2048 ? low : 32768;
  } catch {
    return 32768;
  }
}
const EPHEMERAL_LOW = ephemeralLow();
const handedOut = new Set<number>();
const bindable = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/**
 * A port free now for a server started later. Taken below the ephemeral range: a port from that
 * range (listen(0)) can meanwhile become the source port of some outgoing connection (a relay's
 * own PostgreSQL or Redis connections, 10,000 simulated gateways reconnecting), and the server
 * then fails with EADDRINUSE (it did, once, in CI). The 2,768 ports under the range (30000–32767
 * with Linux's default; RabbitMQ test clusters take theirs from 20000–29999, rabbitmq.ts). Never
 * the same port twice in this process.
 */
export async function freePort(): Promise<number> {
  const low = Math.max(1024, EPHEMERAL_LOW - 2768);
  for (let i = 0; i < 100; i++) {
    const port = low + Math.floor(Math.random() * (EPHEMERAL_LOW - low));
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port between ${low} and ${EPHEMERAL_LOW - 1} after 100 tries`);
}

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
 * Writes `file`, the configuration of an agent the test runs as a child process (and kills):
 * its bus and HTTP on 127.0.0.1, no analysis service of its own (the test serves the steps over
 * TCP, harness.ts startProcessHandlers), durable state. `extra` adds or replaces whole top-level
 * sections (its own `orchestrator`, an `uplink`). Returns `file`.
 */
export function writeProcessAgentConfig(file: string, o: { gatewayId: string; dataDir: string; busPort: number; httpPort: number; extra?: Record<string, unknown> }): string {
  fs.writeFileSync(
    file,
    JSON.stringify({
      gatewayId: o.gatewayId,
      dataDir: o.dataDir,
      broker: { host: '127.0.0.1', port: o.busPort },
      http: { host: '127.0.0.1', port: o.httpPort },
      services: { vision: false, comparison: false, metadata: false },
      orchestrator: { durability: 'full' },
      ...o.extra,
    }),
  );
  return file;
}

/**
 * Starts a compiled entry point of this repo (`npm run build`) with plain node as a child process and resolves once its
 * output contains `ready`. Output is drained (printed with DEBUG_PROCESSES=1).
 */
export function startProcess(entry: string, args: string[], ready: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  // TU_RELAY_CPU_PROF_DIR: relays write a V8 CPU profile there when they exit (not on SIGKILL),
  // e.g. to see where a relay's time goes under `npm run bench -- fleet` (relay/README.md).
  const prof = process.env.TU_RELAY_CPU_PROF_DIR && entry.startsWith('relay/') ? ['--cpu-prof', `--cpu-prof-dir=${process.env.TU_RELAY_CPU_PROF_DIR}`] : [];
  const child = spawn(process.execPath, [...prof, path.join(REPO, entry), ...args], {
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

/**
 * A server binary of a test's own (redis-server, mosquitto) started on `port`: resolves once the
 * port answers, rejects with its stderr if it exits first or does not listen within 5 s.
 * `stop(signal)` ends it and waits for its exit.
 */
export async function startDaemon(command: string, args: string[], port: number): Promise<{ stop: (signal: NodeJS.Signals) => Promise<void> }> {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  for (const deadline = Date.now() + 5000; !(await portOpen(port)); await new Promise((r) => setTimeout(r, 20))) {
    if (exited) throw new Error(`${command} exited: ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${command} not listening on ${port} within 5 s: ${stderr}`);
    }
  }
  return {
    stop: async (signal) => {
      if (exited) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await done;
    },
  };
}
