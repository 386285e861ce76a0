import fs from 'node:fs';
import { TuError } from '@tu/shared';
import { storageUrl, type RelayConfig } from '../config.js';
import { issueToken } from '../graphql/auth.js';
import { Registry } from '../registry/registry.js';
import { openStorage } from '../storage/open.js';
import { rabbitmqAuthBaseUrl, rabbitmqBrokerConf, rabbitmqEnabledPlugins } from '../ingress/rabbitmq-broker.js';
import { rabbitmqConnectionCloser } from '../ingress/rabbitmq-management.js';
import { exportExamples } from './export-examples.js';
import { technicianPublicKeyPem, technicianToken } from './technicians.js';

export const USAGE = `usage: npm run relay -- [--config FILE] [command]
  (no command)                                   start the relay
  tenants add <id> [--name N]                    register a tenant
  tenants list
  gateways add <id> --tenant <t> [--name N]      register a gateway; prints its generated secret ONCE
  gateways list [--tenant T]
  gateways revoke <id>                           refuse the gateway from now on (RabbitMQ ingress: its next connection within
                                                 ingress.rabbitmq.cacheTtlMs; with .management, its open connections closed at once)
  rabbitmq config --relay-url URL                print the enabled_plugins and rabbitmq.conf lines a RabbitMQ cluster needs
                                                 (URL: this relay, or a load balancer before all instances, as the broker reaches it)
  tokens issue --tenant <t> [--sub S] [--ttl 30d]   print a dashboard JWT (HS256, dev)
  technicians key                                print the public key gateways verify technician tokens with
                                                 (provision it: tu-agent provision ... --technician-key FILE)
  technicians token --gateway <g> --role <view,upload,register,teach> --name <who> [--ttl 8h]
                                                 print a short-lived technician token for one gateway (at most 7d)
  examples export --tenant <t> [--gateway G] [--out FILE]
                                                 technicians' labelled examples as JSON lines (stdout or FILE)`;

/** Runs one registry/token command against the configured storage; returns the text to print. */
export async function runCommand(config: RelayConfig, positional: string[], flags: Map<string, string>): Promise<string> {
  const [noun, verb, id] = positional;
  if (noun === 'tokens' && verb === 'issue') {
    const tenant = flags.get('tenant');
    if (!tenant) throw new TuError('INVALID_REQUEST', '--tenant is required');
    return issueToken(config.jwt, { sub: flags.get('sub') ?? 'dev', tenant }, flags.get('ttl') ?? '30d');
  }
  if (noun === 'technicians' && verb === 'key') return technicianPublicKeyPem(config.dataDir);
  if (noun === 'rabbitmq' && verb === 'config') {
    const r = config.ingress.rabbitmq;
    const relayUrl = flags.get('relay-url');
    if (!r) throw new TuError('INVALID_REQUEST', 'ingress.rabbitmq is not configured (urls, password, authSecret): the broker config carries its authSecret and cacheTtlMs');
    if (!relayUrl || !/^https?:\/\//.test(relayUrl)) throw new TuError('INVALID_REQUEST', '--relay-url http(s)://HOST:PORT is required (how the broker nodes reach the relay)');
    return [
      `# enabled_plugins (RABBITMQ_ENABLED_PLUGINS_FILE)`,
      rabbitmqEnabledPlugins({ management: r.management !== undefined }).trimEnd(),
      '',
      '# rabbitmq.conf (add the listeners and cluster formation of your nodes)',
      rabbitmqBrokerConf({ authBaseUrl: rabbitmqAuthBaseUrl(relayUrl, r.authSecret), cacheTtlMs: r.cacheTtlMs, vhost: r.vhost, management: r.management !== undefined }),
    ].join('\n');
  }
  const storage = await openStorage(storageUrl(config));
  try {
    if (noun === 'technicians' && verb === 'token') {
      const req = { gateway: flags.get('gateway'), role: flags.get('role'), name: flags.get('name'), ttl: flags.get('ttl') };
      return await technicianToken(config.dataDir, req, async (id) => (await storage.allGateways()).some((g) => g.id === id));
    }
    const registry = new Registry(storage);
    if (noun === 'tenants' && verb === 'add' && id) {
      await registry.addTenant(id, flags.get('name'));
      return `tenant ${id} added`;
    }
    if (noun === 'gateways' && verb === 'revoke' && id) {
      if (!(await registry.revoke(id))) throw new TuError('UNKNOWN_GATEWAY', `no gateway ${id}`);
      const done = `gateway ${id} revoked: its secret no longer verifies; its events stay`;
      const r = config.ingress.mode === 'rabbitmq' ? config.ingress.rabbitmq : undefined;
      if (!r) return done;
      const cacheNote = `the broker refuses its next connection within ingress.rabbitmq.cacheTtlMs (${r.cacheTtlMs} ms)`;
      if (!r.management) return `${done}; ${cacheNote}; an open connection stays open (set ingress.rabbitmq.management to close it), what it publishes is dead-lettered`;
      // The revocation stands whatever happens here: a failure is reported, not thrown (the
      // ingress closes the connection at the gateway's next publish, relay/src/ingress/rabbitmq.ts).
      const closed = await rabbitmqConnectionCloser({ settings: r.management, username: r.username, password: r.password }).closeGateway(id, `gateway ${id} revoked (tu relay gateways revoke)`);
      return closed.ok
        ? `${done}; closed its ${closed.closed} open broker connection(s); ${cacheNote}`
        : `${done}; ${cacheNote}; closing its open broker connections FAILED: ${closed.reason}. The relay instances close them at its next publish.`;
    }
    if (noun === 'tenants' && verb === 'list') {
      return (await storage.listTenants()).map((t) => `${t.id}\t${t.name ?? ''}\t${t.createdAt}`).join('\n');
    }
    if (noun === 'gateways' && verb === 'add' && id) {
      const tenant = flags.get('tenant');
      if (!tenant) throw new TuError('INVALID_REQUEST', '--tenant is required');
      const secret = await registry.addGateway(id, tenant, { ...(flags.has('name') ? { name: flags.get('name')! } : {}) });
      return [
        `gateway ${id} added to tenant ${tenant}`,
        `secret (shown once; configure it on the gateway as its uplink password): ${secret}`,
        `MQTT: username=${id} password=<secret>`,
      ].join('\n');
    }
    if (noun === 'gateways' && verb === 'list') {
      const tenant = flags.get('tenant');
      return (await storage.allGateways())
        .filter((g) => !tenant || g.tenantId === tenant)
        .map((g) => `${g.id}\t${g.tenantId}\t${g.name ?? ''}\t${g.online ? 'online' : 'offline'}\t${g.lastSeen ?? '-'}`)
        .join('\n');
    }
    if (noun === 'examples' && verb === 'export') {
      const tenant = flags.get('tenant');
      if (!tenant) throw new TuError('INVALID_REQUEST', '--tenant is required');
      if (!(await storage.listTenants()).some((t) => t.id === tenant)) throw new TuError('UNKNOWN_TENANT', `no tenant ${tenant}`);
      const f = { tenantId: tenant, gatewayId: flags.get('gateway') };
      const out = flags.get('out');
      if (!out) {
        const lines: string[] = [];
        await exportExamples(storage, f, (l) => void lines.push(l));
        return lines.join('').trimEnd();
      }
      // Written beside the target, then renamed: a reader never sees half an export.
      const tmp = `${out}.tmp-${process.pid}`;
      const fd = fs.openSync(tmp, 'w');
      let n: number;
      try {
        n = await exportExamples(storage, f, (l) => void fs.writeSync(fd, l));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, out);
      return `${n} labelled examples written to ${out}`;
    }
    throw new TuError('INVALID_REQUEST', USAGE);
  } finally {
    await storage.close();
  }
}
