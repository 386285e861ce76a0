import { createLogger, TuError } from '@tu/shared';
import { parseArgs } from './cli/args.js';
import { runCommand, USAGE } from './cli/commands.js';
import { ConfigError, loadRelayConfig } from './config.js';
import { startRelay } from './relay.js';

/** `node relay/dist/main.js [--config FILE] [tenants|gateways|tokens ...]` (see relay/README.md). */
async function main(): Promise<void> {
  const { positional, flags } = parseArgs(process.argv.slice(2));
  if (flags.has('help')) {
    console.log(USAGE);
    return;
  }
  const file = flags.get('config') ?? process.env.TU_RELAY_CONFIG;
  const config = loadRelayConfig(file ? { file } : {});
  if (positional.length > 0) {
    console.log(await runCommand(config, positional, flags, { warn: (line) => console.error(line) }));
    return;
  }
  const logger = createLogger({ level: config.log.level, name: 'relay' });
  const relay = await startRelay(config, { logger });
  console.log(`relay: ${relay.url}/graphql  gateways: ${relay.mqttUrl}${relay.mqttWsUrl ? ` and ${relay.mqttWsUrl}` : ''}`);
  const stop = async (sig: string) => {
    logger.info({ sig }, 'stopping');
    await relay.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof TuError) {
    console.error(`${err instanceof TuError ? err.code : err.code}: ${err.message}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
