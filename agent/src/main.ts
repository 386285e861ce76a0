#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadAgentConfig, profilePath } from '@tu/firmware-config';
import { createLogger } from '@tu/shared';
import { startAgent } from './agent.js';
import { derivePassword, principalFor, resolveBusSecret } from './broker/credentials.js';
import { startServiceProcess } from './service-process.js';
import { ANALYSIS_SERVICES, type AnalysisServiceName } from './services/run.js';

const USAGE = `Usage:
  tu-agent [--config FILE | --profile NAME]          start the agent (broker, orchestrator, services, HTTP API)
  tu-agent --service vision|comparison|metadata [--config FILE]
                                                     run ONE analysis service as its own process, connecting
                                                     over TCP to the agent's broker (same config and dataDir;
                                                     disable it in the agent with services.NAME = false)
  tu-agent credentials USERNAME [--config FILE]      print the MQTT password of a bus user
                                                     (a service name, or observer:NAME)
Environment overrides: TU_GATEWAY_ID, TU_DATA_DIR, TU_MQTT_PORT, TU_HTTP_PORT, TU_BUS_SECRET, MODEL_DIR, ...`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { config: { type: 'string' }, profile: { type: 'string' }, service: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const file = values.config ?? profilePath(values.profile ?? 'developer');
  let config;
  try {
    config = loadAgentConfig({ file });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`tu-agent: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if (positionals[0] === 'credentials') {
    const user = positionals[1];
    if (!user || !principalFor(user)) {
      console.error(`tu-agent: unknown bus user ${user ?? '(none)'}\n${USAGE}`);
      return 2;
    }
    console.log(derivePassword(resolveBusSecret({ ...config.bus, dataDir: config.dataDir }), user));
    return 0;
  }
  if (positionals.length) {
    console.error(USAGE);
    return 2;
  }
  if (values.service !== undefined) {
    const name = values.service;
    if (!(ANALYSIS_SERVICES as readonly string[]).includes(name)) {
      console.error(`tu-agent: unknown service ${name}; one of ${ANALYSIS_SERVICES.join(', ')}\n${USAGE}`);
      return 2;
    }
    const logger = createLogger({ level: config.log.level, name: `tu-${name}` });
    const svc = await startServiceProcess(name as AnalysisServiceName, config, logger);
    logger.info({ service: name, instanceId: svc.bus.instanceId, broker: `${config.broker.host}:${config.broker.port}` }, 'service started');
    onSignals(logger, () => svc.close());
    return -1;
  }
  const logger = createLogger({ level: config.log.level, name: 'tu-agent' });
  const agent = await startAgent(config, { logger });
  logger.info(
    {
      gatewayId: config.gatewayId,
      mqtt: `mqtt://${agent.broker.address?.host}:${agent.broker.address?.port}`,
      http: agent.http.url,
      dataDir: config.dataDir,
      steps: config.orchestrator.steps,
      services: agent.services.map((s) => s.name),
    },
    'agent started',
  );
  onSignals(logger, () => agent.stop());
  return -1;
}

function onSignals(logger: ReturnType<typeof createLogger>, stop: () => Promise<void>): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    await stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    console.error('tu-agent: failed to start:', err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
