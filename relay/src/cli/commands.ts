import { TuError } from '@tu/shared';
import { storageUrl, type RelayConfig } from '../config.js';
import { Registry } from '../registry/registry.js';
import { openStorage } from '../storage/open.js';
import { rabbitmqAuthBaseUrl, rabbitmqBrokerConf, rabbitmqEnabledPlugins } from '../ingress/rabbitmq-broker.js';
import { checkCommand } from './args.js';
import { exportExamples, exportExamplesToFile } from './export-examples.js';
import { addGateway, listGateways, newGatewaySecret, revokeGateway } from './gateways.js';
import { openSharedPresence } from './shared-presence.js';
import { technicianPublicKeyPem, technicianToken } from './technicians.js';
import { dashboardToken } from './tokens.js';
import { COMMANDS, type CommandSpec } from './usage.js';

export { USAGE } from './usage.js';

/** Where a command's notes for the operator go (main.ts: stderr), apart from the text it returns. */
export interface CommandIo {
  warn: (line: string) => void;
}

/**
 * Runs one registry/token command against the configured storage; returns the text to print.
 * `flags` is checked against the command's declared options (cli/usage.ts) whoever built it.
 */
export async function runCommand(config: RelayConfig, positional: string[], flags: Map<string, string>, io: CommandIo = { warn: (line) => console.error(line) }): Promise<string> {
  const command = checkCommand(positional, flags);
  const id = positional[2]!;
  const opt = (name: string): string | undefined => flags.get(name);
  const need = (name: string): string => flags.get(name)!; // required options: checkCommand saw them
  if (command === '') throw new TuError('INVALID_REQUEST', 'no command: start the relay with `node relay/dist/main.js` (npm run relay)');
  if (command === 'technicians key') return technicianPublicKeyPem(config.dataDir);
  if (command === 'rabbitmq config') {
    const r = config.ingress.rabbitmq;
    const relayUrl = need('relay-url');
    if (!r) throw new TuError('INVALID_REQUEST', 'ingress.rabbitmq is not configured (urls, password, authSecret): the broker config carries its authSecret and cacheTtlMs');
    if (!/^https?:\/\//.test(relayUrl)) throw new TuError('INVALID_REQUEST', '--relay-url http(s)://HOST:PORT is required (how the broker nodes reach the relay)');
    return [
      `# enabled_plugins (RABBITMQ_ENABLED_PLUGINS_FILE)`,
      rabbitmqEnabledPlugins({ management: r.management !== undefined }).trimEnd(),
      '',
      '# rabbitmq.conf (add the listeners and cluster formation of your nodes)',
      rabbitmqBrokerConf({ authBaseUrl: rabbitmqAuthBaseUrl(relayUrl, r.authSecret), cacheTtlMs: r.cacheTtlMs, vhost: r.vhost, management: r.management !== undefined }),
    ].join('\n');
  }
  const spec: CommandSpec = COMMANDS[command];
  const readsOnly = spec.readsOnly === true;
  const storage = await openStorage(storageUrl(config), { existing: readsOnly });
  try {
    const registry = new Registry(storage);
    const tenantExists = async (t: string): Promise<boolean> => (await storage.listTenants()).some((x) => x.id === t);
    switch (command) {
      case 'tokens issue':
        return await dashboardToken(config.jwt, { tenant: need('tenant'), sub: opt('sub'), ttl: opt('ttl') }, tenantExists);
      case 'technicians token':
        return await technicianToken(config.dataDir, { gateway: need('gateway'), role: need('role'), name: need('name'), ttl: opt('ttl') }, (g) => registry.state(g));
      case 'tenants add':
        await registry.addTenant(id, opt('name'));
        return `tenant ${id} added`;
      case 'tenants list':
        return (await storage.listTenants()).map((t) => `${t.id}\t${t.name ?? ''}\t${t.createdAt}`).join('\n');
      case 'gateways add':
        return await addGateway(registry, id, { tenant: need('tenant'), name: opt('name'), printHash: flags.has('print-hash') });
      case 'gateways list': {
        const tenant = opt('tenant');
        // A mistyped tenant would list nothing, as if it had no gateways.
        if (tenant !== undefined && !(await tenantExists(tenant))) throw new TuError('UNKNOWN_TENANT', `no tenant ${tenant} (tenants list shows those there are)`);
        // With Redis, the presence every instance shares, as GraphQL shows it (cli/shared-presence.ts).
        const presence = config.redis ? openSharedPresence(config.redis) : undefined;
        try {
          return await listGateways({ storage, presence, warn: io.warn }, tenant);
        } finally {
          await presence?.close();
        }
      }
      case 'gateways revoke':
        return await revokeGateway(config, registry, id);
      case 'gateways rotate':
      case 'gateways restore':
        return await newGatewaySecret(config, registry, id, { restore: command === 'gateways restore', printHash: flags.has('print-hash') });
      case 'examples export': {
        const tenant = need('tenant');
        if (!(await tenantExists(tenant))) throw new TuError('UNKNOWN_TENANT', `no tenant ${tenant}`);
        const f = { tenantId: tenant, gatewayId: opt('gateway') };
        const out = opt('out');
        if (out === undefined) {
          const lines: string[] = [];
          await exportExamples(storage, f, (l) => void lines.push(l));
          return lines.join('').trimEnd();
        }
        return `${await exportExamplesToFile(storage, f, out)} labelled examples written to ${out}`;
      }
    }
  } finally {
    await storage.close();
  }
}
