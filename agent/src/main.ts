#!/usr/bin/env node
/**
 * The `tu-agent` command: runs the agent (default) and the installer's and technician's
 * commands on the device. Each command lives in cli/ (one file each); this file only
 * parses arguments and maps errors to exit codes: 0 ok, 1 failed, 2 bad usage or config,
 * 3 agent not answering (status).
 */
import path from 'node:path';
import { ConfigError, ENV_OVERRIDES, loadAgentConfig, type AgentConfig } from '@tu/firmware-config';
import { createLogger, TuError } from '@tu/shared';
import { startAgent } from './agent.js';
import { derivePassword, principalFor, resolveBusSecret } from './broker/credentials.js';
import { parseCommandLine, positiveInteger, UsageError } from './cli/args.js';
import { configFile, type ConfigChoice } from './cli/config-path.js';
import { installCommand, uninstallCommand } from './cli/install.js';
import { logsHints } from './cli/logs.js';
import { provisionCommand } from './cli/provision.js';
import { stackCommand } from './cli/stack.js';
import { statusCommand } from './cli/status.js';
import { tokenCommand } from './cli/token.js';
import { recoverCommand, rollbackCommand, updateCommand } from './cli/update.js';
import { versionLines } from './cli/version.js';
import { appLayout } from './release/layout.js';
import { startServiceProcess } from './service-process.js';
import { ANALYSIS_SERVICES, type AnalysisServiceName } from './services/run.js';
import { redactUrl } from './uplink/relay-connection.js';

const USAGE = `Usage: tu-agent [command] [--config FILE | --profile NAME]
  run                                  start the agent (the default command)
  run --service vision|comparison|metadata
                                       run ONE analysis service as its own process, connecting over TCP
                                       to the agent's broker (disable it in the agent: services.NAME = false)
  version                              agent, build commit, runtime, model and head versions
  status                               health summary of the running agent (exit 0 ok, 1 degraded, 3 down)
  config validate FILE                 check a config file alone (no environment overrides); one line per bad field (exit 2)
  credentials USERNAME                 print the MQTT password of a bus user (a service, or observer:NAME)
  token [--role view,upload,register,teach] [--name WHO] [--ttl 12h]
                                       print a technician token for the API and UI (open http://GATEWAY/#token=<token>),
                                       signed with the device key in the data dir (default: all roles, 12 hours)
  logs                                 where the logs are and how to read them
  stack [FILE]                         map stack-trace frames in FILE or stdin (log lines) from the bundle to the sources
On a gateway (run from an unpacked release, as root; --root DIR: these commands work on a folder instead of /):
  install [--no-system]                lay out /opt/tu-agent/<version>, current, /etc/tu-agent, /var/lib/tu-agent, the unit
  provision --gateway-id ID --relay mqtts://HOST:PORT --secret-file FILE [--ca PEM] [--technician-key PEM]
                                       --technician-key: the relay's public key for technician tokens
                                       (npm run relay -- technicians key)
  update TARBALL [--timeout-s 90] [--restart-command CMD]
                                       install beside the running version, switch, roll back if not healthy
  rollback [--timeout-s 90] [--restart-command CMD]
                                       go back to the previous version
  recover                              undo an update cut short before its version answered healthy
                                       (the unit runs it before each start)
  uninstall [--purge]                  remove the install (--purge also removes config and data)
An option a command does not use, an empty option value, or a word it does not take is refused (exit 2).
Config: --config, --profile, TU_CONFIG, /etc/tu-agent/config.json (installed), then the bundled profile.
Environment overrides: TU_GATEWAY_ID, TU_DATA_DIR, TU_MQTT_PORT, TU_HTTP_PORT, TU_BUS_SECRET, MODEL_DIR, ...`;

const EXIT_2_CODES = new Set<string>(['CONFIG_INVALID', 'CONFIG_UNREADABLE', 'DATA_FORMAT_TOO_NEW', 'DATA_FORMAT_INVALID']);

const out = (line: string) => console.log(line);

async function main(): Promise<number> {
  const { command, rest, values } = parseCommandLine(process.argv.slice(2));
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const root = values.root ?? '/';
  // Only the gateway commands take --root (args.ts); the others read the installed config under /.
  const choice: ConfigChoice = { config: values.config, profile: values.profile };
  const config = (): AgentConfig => loadAgentConfig({ file: configFile(choice) });
  const installer = () => ({ root, out, restartCommand: values['restart-command'], timeoutMs: positiveInteger('timeout-s', values['timeout-s'], 90, 3600) * 1000 });

  switch (command) {
    case 'run':
      return run(config(), values.service);
    case 'version': {
      let cfg: AgentConfig | null = null;
      try {
        cfg = config();
      } catch {
        // version must answer even when the config is broken
      }
      versionLines(cfg).forEach(out);
      return 0;
    }
    case 'status':
      return statusCommand(config());
    case 'config': {
      const file = rest[1];
      if (rest[0] !== 'validate' || !file || rest.length > 2) throw new UsageError('usage: tu-agent config validate FILE');
      // The file alone: the shell's variables are not the service's, so a file that validates
      // only thanks to them would fail at start (the unit sets none of ENV_OVERRIDES).
      const cfg = loadAgentConfig({ file, env: {} });
      out(`${file}: valid (gateway ${cfg.gatewayId}, data ${cfg.dataDir}, uplink ${cfg.uplink.url ? redactUrl(cfg.uplink.url) : 'none'})`);
      const fromShell = Object.keys(ENV_OVERRIDES).filter((name) => process.env[name]);
      if (fromShell.length) out(`note: this shell sets ${fromShell.join(', ')}; validated without them (the service sees only the variables its unit sets)`);
      return 0;
    }
    case 'credentials': {
      const user = rest[0];
      if (!user || !principalFor(user)) throw new UsageError(`unknown bus user ${user ?? '(none)'}; a service name or observer:NAME`);
      const cfg = config();
      out(derivePassword(resolveBusSecret({ ...cfg.bus, dataDir: cfg.dataDir }), user));
      return 0;
    }
    case 'token':
      return tokenCommand(config(), { role: values.role, name: values.name, ttl: values.ttl }, out, (line) => console.error(line));
    case 'logs':
      logsHints().forEach(out);
      return 0;
    case 'stack': {
      const { appDir } = appLayout();
      if (!appDir) throw new UsageError('tu-agent stack maps frames of a release bundle; in a checkout the frames already point at agent/dist, mapped by --enable-source-maps');
      return stackCommand(path.join(appDir, 'lib'), rest[0], { input: process.stdin, output: process.stdout, warn: (line) => console.error(`tu-agent: ${line}`) });
    }
    case 'install':
      return installCommand({ root, noSystem: values['no-system'] ?? false, out });
    case 'uninstall':
      return uninstallCommand({ root, noSystem: values['no-system'] ?? false, purge: values.purge ?? false, out });
    case 'provision': {
      const gatewayId = values['gateway-id'];
      const relay = values.relay;
      const secretFile = values['secret-file'];
      if (!gatewayId || !relay || !secretFile) throw new UsageError('provision needs --gateway-id, --relay and --secret-file');
      return provisionCommand({ root, gatewayId, relay, secretFile, ca: values.ca, technicianKey: values['technician-key'], out });
    }
    case 'update': {
      if (!rest[0] || rest.length > 1) throw new UsageError('usage: tu-agent update TARBALL');
      return updateCommand(rest[0], installer());
    }
    case 'rollback':
      return rollbackCommand(installer());
    case 'recover':
      if (rest.length) throw new UsageError('usage: tu-agent recover');
      return recoverCommand({ root, out });
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

async function run(config: AgentConfig, service: string | undefined): Promise<number> {
  if (service !== undefined) {
    if (!(ANALYSIS_SERVICES as readonly string[]).includes(service)) throw new UsageError(`unknown service ${service}; one of ${ANALYSIS_SERVICES.join(', ')}`);
    const logger = createLogger({ level: config.log.level, name: `tu-${service}` });
    const svc = await startServiceProcess(service as AnalysisServiceName, config, logger);
    logger.info({ service, instanceId: svc.bus.instanceId, broker: `${config.broker.host}:${config.broker.port}` }, 'service started');
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
    if (err instanceof UsageError) {
      console.error(`tu-agent: ${err.message}\n${USAGE}`);
      process.exit(2);
    }
    if (err instanceof ConfigError) {
      console.error(`tu-agent: ${err.message}`);
      process.exit(2);
    }
    if (err instanceof TuError) {
      console.error(`tu-agent: ${err.code}: ${err.message}`);
      // A bad config or data from a newer agent: starting again cannot help (the unit's RestartPreventExitStatus=2).
      process.exit(EXIT_2_CODES.has(err.code) ? 2 : 1);
    }
    console.error('tu-agent: failed:', err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
