/** `tu-agent status`: a health summary of the running agent for a technician. Exit 0 ok, 1 degraded, 3 not answering. */
import type { AgentConfig } from '@tu/firmware-config';
import { localViewToken, readHealth } from './health-client.js';

export async function statusCommand(config: AgentConfig): Promise<number> {
  // Whoever can read the device key (root, the service user) sees the details; anyone else the public summary.
  const h = await readHealth(config.http.port, 2000, await localViewToken(config, 'tu-agent status'));
  if (!h.ok) {
    console.log(`agent: not answering — ${h.reason}`);
    console.log('check the service: systemctl status tu-agent; logs: tu-agent logs');
    return 3;
  }
  const b = h.body;
  console.log(`agent: ${b.status} (gateway ${b.gatewayId}, version ${b.agent?.version ?? '?'}, up ${b.uptimeS} s)`);
  for (const r of b.reasons ?? []) console.log(`  why: ${r}`);
  if (!b.broker || !b.services || !b.model) {
    console.log(`details: only for a technician token; run as root or as the service user (the data dir ${config.dataDir} holds the device key)`);
    return b.status === 'ok' ? 0 : 1;
  }
  console.log(`bus: ${b.broker.up ? 'up' : 'DOWN'}, ${b.broker.clients} clients`);
  for (const [name, s] of Object.entries(b.services)) console.log(`service ${name} (${s.step}): ${s.up ? 'up' : 'DOWN'}`);
  console.log(`model: ${b.model.state}${b.model.id ? ` ${b.model.id} ${b.model.version ?? ''} on ${b.model.backend ?? '?'}` : ''}`);
  console.log(`uplink: ${JSON.stringify(b.uplink)}`);
  return b.status === 'ok' ? 0 : 1;
}
