/**
 * All-in-one: the cloud relay and one gateway agent in one process, the agent's uplink
 * pointed at that relay (the default `npm start`). Development credentials (relay JWT
 * secret, the gateway's secret, the bus secret) are generated once into .data/ (0600);
 * the relay's lie where relay/src/config.ts looks for them, so `npm run relay -- ...`
 * works on the same data without extra settings.
 *
 * `npm start` runs this compiled (dist/start-all.js, `npm run build:start`) with plain
 * node through `exec`: the process npm starts is this one, so the SIGTERM a process
 * manager sends to npm (which forwards it) stops both servers, and then npm exits.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadAgentConfig, profilePath } from '@tu/firmware-config';
import { createLogger } from '@tu/shared';
import { deviceToken, readOrCreateSecret, startAgent } from '@tu/agent';
import { devJwtSecretFile, issueToken, loadRelayConfig, startRelay } from '@tu/relay';

const TENANT = 'dev';
const STOP_TIMEOUT_MS = 20_000;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' }, profile: { type: 'string' }, data: { type: 'string' } } });
  const dataRoot = path.resolve(values.data ?? '.data');
  const agentFile = values.config ?? profilePath(values.profile ?? 'developer');
  // Read the agent config first so a bad one stops us before anything starts.
  const gatewayId = loadAgentConfig({ file: agentFile }).gatewayId;

  const relayDir = path.join(dataRoot, 'relay');
  const gatewaySecretFile = path.join(dataRoot, 'agent', 'uplink-password');
  const gatewaySecret = readOrCreateSecret(gatewaySecretFile);
  const registryFile = path.join(relayDir, 'registry.dev.json');
  fs.mkdirSync(relayDir, { recursive: true });
  fs.writeFileSync(registryFile, JSON.stringify({ tenants: [{ id: TENANT, name: 'Development' }], gateways: [{ id: gatewayId, tenant: TENANT, name: 'all-in-one agent', secret: gatewaySecret }] }), { mode: 0o600 });
  // Created for a first start; the relay (and the relay CLI) read it when no jwt.secret is set.
  if (!process.env.TU_RELAY_JWT_SECRET) readOrCreateSecret(devJwtSecretFile(relayDir));
  const relayConfig = loadRelayConfig({ overrides: { dataDir: relayDir, registryFile, 'http.host': '127.0.0.1', 'ingress.host': '127.0.0.1' } });
  const logger = createLogger({ level: relayConfig.log.level, name: 'tu' });
  const relay = await startRelay(relayConfig, { logger: logger.child({ part: 'relay' }) });

  const agentConfig = loadAgentConfig({
    file: agentFile,
    overrides: { dataDir: path.join(dataRoot, 'agent'), 'uplink.url': relay.mqttUrl, 'uplink.passwordFile': gatewaySecretFile },
  });
  const agent = await startAgent(agentConfig, { logger: logger.child({ part: 'agent' }) });
  const token = await issueToken(relayConfig.jwt, { sub: 'dev', tenant: TENANT }, '30d');
  // Signed with the agent's device key (agent/src/cli/token.ts, like `tu-agent token`): every role, 12 hours.
  const technicianToken = await deviceToken(agentConfig, { sub: 'developer' });

  console.log(
    [
      '',
      `  agent (gateway ${gatewayId}):  ${agent.http.url}   MQTT mqtt://${agent.broker.address?.host}:${agent.broker.address?.port}`,
      `  relay (cloud):                 ${relay.url}   GraphQL ${relay.url}/graphql   gateway ingress ${relay.mqttUrl}`,
      `  dashboard token (tenant ${TENANT}, 30 days): ${token}`,
      `  technician UI: ${agent.http.url}/#token=${technicianToken}`,
      `technician token: ${technicianToken}`,
      '',
    ].join('\n'),
  );

  // A process manager signals npm (which forwards it here) and often the whole process
  // group too: the second delivery of the same stop is ignored.
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const deadline = setTimeout(() => {
      console.error(`tu: not stopped within ${STOP_TIMEOUT_MS / 1000} s; exiting anyway`);
      process.exit(1);
    }, STOP_TIMEOUT_MS);
    deadline.unref();
    try {
      // The agent first: its uplink leaves the relay before the relay closes.
      await agent.stop();
      await relay.stop();
    } catch (err) {
      console.error(`tu: stopping failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    }
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(`tu: failed to start: ${err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err)}`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
