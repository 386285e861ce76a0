import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, ENV_OVERRIDES, loadRelayConfig } from '@tu/relay';
import { freshHome, runToEnd } from './support/release.js';

/**
 * The N-instance deployment of docs/relay-deployment.md: its systemd template unit, its example
 * environment, and the rule that production needs no dev dependency.
 */
const ROOT = path.resolve(import.meta.dirname, '..');
const DEPLOY = path.join(ROOT, 'relay/deploy');

test('the template unit passes systemd-analyze verify, named for an instance (its HTTP port)', () => {
  const dir = freshHome();
  const unit = path.join(dir, 'tu-relay@8091.service');
  fs.copyFileSync(path.join(DEPLOY, 'tu-relay@.service'), unit);
  const verify = runToEnd(['systemd-analyze', 'verify', unit]);
  // The only complaint allowed is a missing /usr/bin/node or installed relay (they exist on an instance host).
  const complaints = verify.out.split('\n').filter((l) => l.trim() && !/\/usr\/bin\/node|\/opt\/tu-relay\/current/.test(l));
  assert.equal(complaints, [], `systemd-analyze verify: ${verify.out}`);
  const text = fs.readFileSync(unit, 'utf8');
  for (const line of ['Environment=TU_RELAY_HTTP_PORT=%i', 'EnvironmentFile=/etc/tu-relay/relay.env', 'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict']) assert.ok(text.includes(line), line);
});

/** KEY=VALUE lines of an environment file (systemd's EnvironmentFile syntax, without quoting). */
function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

test('the example environment names only settings the relay knows; filled in, it is a valid configuration; as shipped, the relay refuses it and names each missing secret', () => {
  const example = readEnvFile(path.join(DEPLOY, 'relay.env.example'));
  assert.ok(Object.keys(example).length >= 10);
  // As shipped: the secrets are empty, so the relay refuses to start and says which.
  const err = (() => {
    try {
      loadRelayConfig({ env: { ...example, TU_RELAY_HTTP_PORT: '8091' } });
      return undefined;
    } catch (e) {
      return e as Error;
    }
  })();
  assert.instance(err, ConfigError);
  for (const field of ['ingress.rabbitmq.password', 'ingress.rabbitmq.authSecret']) assert.ok(err!.message.includes(field), `names ${field}: ${err!.message}`);
  // Filled in as the comments say (the unit adds the port and the data directory).
  const filled = Object.fromEntries(Object.entries(example).map(([k, v]) => [k, v === '' ? 'f'.repeat(48) : v.replace(/<[^>]*>/g, 'https://id.example.com')]));
  const config = loadRelayConfig({ env: { ...filled, TU_RELAY_HTTP_PORT: '8091', TU_RELAY_DATA_DIR: '/var/lib/tu-relay/8091' } });
  assert.is(config.ingress.mode, 'rabbitmq');
  assert.is(config.ingress.rabbitmq?.urls.length, 3);
  assert.is(config.http.port, 8091);
  assert.ok(config.storage.url?.startsWith('postgres://'));
  assert.ok(config.redis?.url.startsWith('redis://'));
  assert.equal(config.http.tls, { cert: '/etc/tu-relay/tls/relay.crt', key: '/etc/tu-relay/tls/relay.key' });
  // Every TU_RELAY_* line is one the relay reads (a misspelt name would be silently ignored).
  for (const k of Object.keys(example)) assert.ok(k in ENV_OVERRIDES, `${k} is a relay setting`);
});

test('production needs no dev dependency: every package the compiled relay and shared code import is a declared dependency', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const imported = new Set<string>();
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.js')) {
        for (const m of fs.readFileSync(p, 'utf8').matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)['"]([^'"./][^'"]*)['"]/g)) {
          const spec = m[1]!;
          if (spec.startsWith('node:')) continue;
          imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        }
      }
    }
  };
  for (const d of ['relay/dist', 'shared/dist']) walk(path.join(ROOT, d));
  const undeclared = [...imported].filter((p) => !p.startsWith('@tu/') && !(p in pkg.dependencies));
  assert.ok(imported.size > 10, `found the imports (${imported.size})`);
  assert.equal(undeclared, [], 'imported by relay/dist or shared/dist but not in package.json dependencies');
});

test.run();
