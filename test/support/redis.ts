import { freePort, startDaemon } from './processes.js';

/**
 * A private redis-server (no persistence) on `port` (default: a free one), for a test that stops
 * and restarts Redis under a relay; the shared test Redis (TU_TEST_REDIS_URL) is left alone.
 */
export async function startRedis(port?: number): Promise<{ url: string; port: number; stop: () => Promise<void> }> {
  const p = port ?? (await freePort());
  const daemon = await startDaemon('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], p);
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    stop: () => daemon.stop('SIGKILL'),
  };
}
