/**
 * What a gateway connection costs a relay instance (issue 11's reconnect storm): two instances
 * from the build (`node relay/dist/main.js`, embedded brokers, PostgreSQL, Redis). Instance B
 * first takes a fleet of its own, which stays connected (so B is warm and busy, as a survivor
 * is). Then another fleet, each gateway with its own login, connects all at once, three times:
 * 1. to instance A, which verifies every secret with scrypt (the fleet registry's cost, see
 *    bench/fleet/registry.ts; the production cost per login is printed beside it);
 * 2. to instance B, which never saw them: as when A dies and its gateways move to B. B takes each
 *    login from the tags A shared in Redis (relay/src/registry/secrets.ts);
 * 3. to B again: from B's memory.
 * Relay CPU (user + system, /proc) per connection, from the first CONNECT until the instance is
 * idle again (presence writes included), and how each login was verified (the relays'
 * `tu_relay_gateway_logins_total`).
 *
 *   npm run bench -- logins            TU_LOGINS_GATEWAYS=3334 npm run bench -- logins
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { tmpDir } from '../test/support/harness.js';
import { deleteRedisKeys, dropPgSchema, PG_BASE } from '../test/support/relay.js';
import { embeddedBroker } from './fleet/broker.js';
import { productionVerifyMs, writeFleetRegistry, FLEET_SCRYPT_N } from './fleet/registry.js';
import { allocateRelays, cpuSeconds, type RelayInstance } from './fleet/relays.js';
import { Simulator } from './fleet/simulator.js';
import { fmt, table } from './stats.js';

const env = z
  .object({
    TU_LOGINS_GATEWAYS: z.coerce.number().int().min(10).max(10_000).default(1000),
    TU_LOGINS_REDIS_URL: z.string().regex(/^redis:\/\//).default('redis://127.0.0.1:6379/12'),
  })
  .parse(process.env);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The relay's login counters by how they were verified. */
async function logins(r: RelayInstance): Promise<Record<string, number>> {
  const text = await (await fetch(`${r.url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tu_relay_gateway_logins_total\{verified_by="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** Connects the whole fleet to `relay` at once; relay CPU seconds until it is idle again (bounded: 20 s). */
async function pass(sim: Simulator, relay: RelayInstance): Promise<{ cpu: number; ms: number; connected: number }> {
  const c0 = cpuSeconds(relay.pid);
  const t0 = Date.now();
  await sim.connectAll(60_000);
  // A gateway whose CONNACK took longer than its connect timeout retries by itself (bounded: 30 s more).
  for (let i = 0; i < 300 && sim.connected < sim.gateways.length; i++) await sleep(100);
  const ms = Date.now() - t0;
  const connected = sim.connected;
  let last = cpuSeconds(relay.pid);
  for (let i = 0; i < 100; i++) {
    await sleep(200);
    const now = cpuSeconds(relay.pid);
    if (now - last < 0.01) break;
    last = now;
  }
  return { cpu: cpuSeconds(relay.pid) - c0, ms, connected };
}

export default async function run(): Promise<void> {
  const n = env.TU_LOGINS_GATEWAYS;
  const dir = tmpDir('tu-logins-');
  const tag = randomBytes(4).toString('hex');
  const schema = `tu_logins_${tag}`;
  const prefix = `tu:bench-logins:${tag}:`;
  const { file, gateways: all } = await writeFleetRegistry(dir, `logins-${tag}`, `lg${tag}`, 2 * n);
  const [own, gateways] = [all.slice(0, n), all.slice(n)];
  const broker = embeddedBroker();
  const jwt = randomBytes(32).toString('hex');
  const relays = await allocateRelays(2, dir, (i) => ({
    config: broker.relayConfig(i),
    env: {
      ...broker.relayEnv(i),
      TU_RELAY_STORAGE_URL: `${PG_BASE}?schema=${schema}`,
      TU_RELAY_JWT_SECRET: jwt,
      TU_RELAY_REDIS_URL: env.TU_LOGINS_REDIS_URL,
      TU_RELAY_REDIS_KEY_PREFIX: prefix,
      ...(i === 0 ? { TU_RELAY_REGISTRY_FILE: file } : {}),
    },
  }));
  const [a, b] = relays as [RelayInstance, RelayInstance];
  try {
    await a.start();
    await b.start();
    const held = new Simulator({ gateways: own, urls: [b.mqttUrl], waveSize: n, maxPendingPerGateway: 60 });
    const warm = await pass(held, b);
    console.log(`instance B's own ${warm.connected} gateways connected (${fmt((warm.cpu * 1000) / n, 2)} ms of CPU each, scrypt included); they stay connected`);
    const rows: (string | number)[][] = [['pass', 'relay CPU per connection', 'connected', 'all connected after', 'verified by (that instance)']];
    const steps: [string, RelayInstance][] = [
      [`1. instance A, first logins (scrypt at N=${FLEET_SCRYPT_N})`, a],
      ['2. instance B, logins A verified (shared tags)', b],
      ["3. instance B again (B's memory)", b],
    ];
    for (const [name, relay] of steps) {
      const before = await logins(relay);
      const sim = new Simulator({ gateways, urls: [relay.mqttUrl], waveSize: n, maxPendingPerGateway: 60 });
      const r = await pass(sim, relay);
      const after = await logins(relay);
      await sim.close();
      await sleep(1000);
      const how = Object.keys(after)
        .map((k) => `${k} ${(after[k] ?? 0) - (before[k] ?? 0)}`)
        .join(', ');
      rows.push([name, `${fmt((r.cpu * 1000) / n, 2)} ms`, `${r.connected}/${n}`, `${fmt(r.ms, 0)} ms`, how]);
    }
    const prod = await productionVerifyMs();
    rows.push(['one scrypt at the production cost (N=16384)', `${fmt(prod, 1)} ms`, '', '', 'what pass 1 would add per login in production']);
    await held.close();
    console.log(table(rows));
    console.log(`${n} gateways connecting at once to one instance (relay/src/ingress/connect-pacer.ts paces them at its default 1,000/s after a burst of 200). Relay CPU from the first CONNECT until the instance is idle: CONNECT, login, CONNACK, the status publish and presence (Redis and PostgreSQL).`);
  } finally {
    for (const r of relays) await r.stop().catch(() => undefined);
    await dropPgSchema(schema).catch(() => undefined);
    await deleteRedisKeys(env.TU_LOGINS_REDIS_URL, prefix).catch(() => undefined);
  }
}
