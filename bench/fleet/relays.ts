import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, startProcess, stopProcess } from '../../test/support/processes.js';

/**
 * Relay instances as production runs them: plain `node relay/dist/main.js` (the build of
 * `npm run build`), configured by environment (TU_RELAY_*, relay/src/config.ts ENV_OVERRIDES)
 * plus a config file for what has no variable (ingress limits). Killed with SIGKILL (no clean
 * shutdown, nothing flushed) and restarted on the same ports and data directory.
 */
export interface RelayInstanceSpec {
  env: Record<string, string>;
  /** Config file fields (TU_RELAY_CONFIG). */
  config: Record<string, unknown>;
}

export class RelayInstance {
  child: ChildProcess | undefined;
  /** Highest resident set size seen (kB, /proc/<pid>/status VmHWM of each life). */
  peakRssKb = 0;
  #cpuBefore = 0;

  constructor(
    readonly index: number,
    readonly httpPort: number,
    readonly mqttPort: number,
    private readonly dir: string,
    /** Read at every start: the broker may only know its part once the instances' ports are chosen. */
    private readonly spec: () => RelayInstanceSpec,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.mqttPort}`;
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  async start(): Promise<void> {
    const spec = this.spec();
    const file = path.join(this.dir, `relay-${this.index}.json`);
    fs.writeFileSync(file, JSON.stringify(spec.config));
    this.child = await startProcess('relay/dist/main.js', [], 'relay: ', {
      TU_RELAY_CONFIG: file,
      TU_RELAY_DATA_DIR: path.join(this.dir, `relay-${this.index}`),
      TU_RELAY_HTTP_HOST: '127.0.0.1',
      TU_RELAY_HTTP_PORT: String(this.httpPort),
      TU_RELAY_MQTT_PORT: String(this.mqttPort),
      TU_RELAY_LOG_LEVEL: 'warn',
      MALLOC_ARENA_MAX: '2',
      ...spec.env,
    });
  }

  /** Resident memory now (kB), and its high-water mark for this life folded into peakRssKb. */
  rssKb(): number {
    const pid = this.pid;
    if (pid === undefined) return 0;
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
      this.peakRssKb = Math.max(this.peakRssKb, kb('VmHWM'));
      return kb('VmRSS');
    } catch {
      return 0;
    }
  }

  /** CPU seconds used since the last call (user + system, /proc/<pid>/stat), for this life. */
  cpuSecondsDelta(): number {
    const s = cpuSeconds(this.pid);
    const d = Math.max(0, s - this.#cpuBefore);
    this.#cpuBefore = s;
    return d;
  }

  async kill(): Promise<void> {
    this.rssKb();
    if (this.child) await stopProcess(this.child, 'SIGKILL');
    this.#cpuBefore = 0;
  }

  /** SIGTERM (the relay flushes its storage queue), SIGKILL after `graceMs`: bounded even when the database is far behind. */
  async stop(graceMs = 10_000): Promise<void> {
    this.rssKb();
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

const TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) of a process, 0 when it is gone. */
export function cpuSeconds(pid: number | undefined, withReapedChildren = false): number {
  if (pid === undefined) return 0;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = Number(f[11]) + Number(f[12]);
    // cutime + cstime: the CPU of children that ended and were waited for by this process.
    return (withReapedChildren ? own + Number(f[13]) + Number(f[14]) : own) / TICKS;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds used by a changing set of processes since `start()`, counted per pid: a process
 * that started since counts from 0, one that ended counts no more (a killed broker node's last
 * seconds are missing, never the others'). Summing the set before and after instead read 0 for
 * a stage in which a node with many CPU seconds behind it was replaced by a fresh one.
 */
export function pidsCpu(pids: () => number[]): { start(): void; seconds(): number } {
  let at = new Map<number, number>();
  return {
    start() {
      at = new Map(pids().map((p) => [p, cpuSeconds(p)]));
    },
    seconds() {
      return pids().reduce((sum, p) => sum + Math.max(0, cpuSeconds(p) - (at.get(p) ?? 0)), 0);
    },
  };
}

export async function allocateRelays(n: number, dir: string, spec: (i: number) => RelayInstanceSpec): Promise<RelayInstance[]> {
  const out: RelayInstance[] = [];
  for (let i = 0; i < n; i++) out.push(new RelayInstance(i, await freePort(), await freePort(), dir, () => spec(i)));
  return out;
}

/**
 * CPU seconds of every process with this command name (/proc/<pid>/comm), e.g. the database
 * server's, with those of its children that ended: PostgreSQL's backends come and go, and the
 * postmaster, which waits for each, carries their CPU time on.
 */
export function commandCpuSeconds(comm: string): number {
  let total = 0;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim() === comm) total += cpuSeconds(Number(d), true);
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** Pids of the processes whose command line holds one of `marks` (e.g. a broker node's name). */
export function pidsWithArgument(marks: string[]): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (marks.some((m) => cmd.includes(m))) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
