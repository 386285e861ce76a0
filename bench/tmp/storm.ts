import { randomBytes } from 'node:crypto';
import { tmpDir } from '../../test/support/harness.js';
import { dropPgSchema, PG_BASE } from '../../test/support/relay.js';
import { embeddedBroker } from '../fleet/broker.js';
import { allocateRelays, cpuSeconds } from '../fleet/relays.js';
import { writeFleetRegistry } from '../fleet/registry.js';
import { Simulator } from '../fleet/simulator.js';

const n = Number(process.env.N ?? 3334);
const dir = tmpDir('tu-storm-');
const tag = randomBytes(4).toString('hex');
const schema = `tu_storm_${tag}`;
const { file, gateways } = await writeFleetRegistry(dir, `storm-${tag}`, `st${tag}`, n);
const broker = embeddedBroker();
const [relay] = await allocateRelays(1, dir, (i) => ({ config: broker.relayConfig(i), env: { ...broker.relayEnv(i), TU_RELAY_STORAGE_URL: `${PG_BASE}?schema=${schema}`, TU_RELAY_JWT_SECRET: randomBytes(32).toString('hex'), TU_RELAY_REDIS_URL: 'redis://127.0.0.1:6379/12', TU_RELAY_REGISTRY_FILE: file } }));
await relay!.start();
try {
  for (let pass = 1; pass <= Number(process.env.PASSES ?? 4); pass++) {
    const sim = new Simulator({ gateways, urls: [relay!.mqttUrl], waveSize: 5000, maxPendingPerGateway: 60 });
    const c0 = cpuSeconds(relay!.pid);
    const t0 = Date.now();
    const ms = await sim.connectAll(60_000);
    const connected = sim.connected;
    // until the relay is idle again (presence writes etc.)
    let c1 = cpuSeconds(relay!.pid);
    for (let i = 0; i < 50; i++) { await new Promise((r) => setTimeout(r, 200)); const c = cpuSeconds(relay!.pid); if (c - c1 < 0.01) break; c1 = c; }
    const c2 = cpuSeconds(relay!.pid);
    console.log(`pass ${pass}: ${connected}/${n} connected in ${ms} ms; relay CPU ${(c2 - c0).toFixed(2)} s = ${(((c2 - c0) * 1000) / n).toFixed(3)} ms/connect (settled after ${Date.now() - t0} ms)`);
    await sim.close();
    await new Promise((r) => setTimeout(r, 1500));
  }
} finally {
  await relay!.stop();
  await dropPgSchema(schema);
}
