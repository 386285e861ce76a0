import { spawn, type ChildProcess } from 'node:child_process';
import { until } from './harness.js';
import { freePort, portOpen } from './processes.js';

/**
 * A private redis-server (no persistence) on `port` (default: a free one), for a test that stops
 * and restarts Redis under a relay; the shared test Redis (TU_TEST_REDIS_URL) is left alone.
 */
export async function startRedis(port?: number): Promise<{ url: string; port: number; stop: () => Promise<void> }> {
  const p = port ?? (await freePort());
  const child: ChildProcess = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  let open = false;
  await until(() => {
    if (exited) throw new Error(`redis-server exited: ${stderr}`);
    void portOpen(p).then((o) => (open = o));
    return open;
  }, 5000, 'redis-server listening');
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    stop: async () => {
      if (exited) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await done;
    },
  };
}
