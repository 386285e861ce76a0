/**
 * The relay's operator CLI (`node relay/dist/main.js <command>`, as `npm run relay -- <command>`
 * runs it) and its configuration, run as a process against a scratch SQLite database: strict
 * options per command, token lifetimes and tenants, a config that cannot work refused, read-only
 * commands that create nothing, errors that name the file, gateway rotation and restore.
 */
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { ConfigError, loadConfigFile } from '@tu/shared';
import { createVerifier, loadRelayConfig, openStorage, verifySecret } from '@tu/relay';
import { registryFileSchema } from '@tu/relay/internal/registry/file';
import { REPO_ROOT } from './support/data.js';
import { tmpDir } from './support/harness.js';
import { connectGateway, dropPgSchema, PG_BASE, startTestRelay } from './support/relay.js';

const MAIN = path.join(REPO_ROOT, 'relay/dist/main.js');
const JWT = 'cli-operator-test-secret-0123456789';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A scratch relay: its data directory (SQLite database inside) and a working directory to run in. */
function scratch(): { dataDir: string; cwd: string; cli: (args: string[], env?: Record<string, string>) => Run } {
  const dataDir = path.join(tmpDir('tu-relay-cli-'), 'data');
  const cwd = tmpDir('tu-relay-cli-cwd-');
  const cli = (args: string[], env: Record<string, string> = {}): Run => {
    const r = spawnSync(process.execPath, [MAIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', TU_RELAY_JWT_SECRET: JWT, TU_RELAY_DATA_DIR: dataDir, ...env }, encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
  };
  return { dataDir, cwd, cli };
}

/** A usage or operator error: exit 2, one catalogue line, no stack trace. */
function refused(r: Run, code: string, mentions: RegExp, what: string): void {
  assert.is(r.status, 2, `${what}: exit 2 (stdout ${r.stdout}, stderr ${r.stderr})`);
  assert.match(r.stderr, new RegExp(`^${code}: `), `${what}: ${code}`);
  assert.match(r.stderr, mentions, what);
  assert.not.match(r.stderr, /^\s+at /m, `${what}: no stack trace`);
}

// 1
test('a flag without its value, an unknown option, an extra argument: usage errors (exit 2) naming them; nothing stored or written', () => {
  const s = scratch();
  assert.is(s.cli(['tenants', 'add', 'acme', '--name', 'ACME Rental']).status, 0);
  refused(s.cli(['tenants', 'add', 'beta', '--name']), 'INVALID_REQUEST', /--name/, 'tenants add --name (no value)');
  assert.not.match(s.cli(['tenants', 'list']).stdout, /beta|true/, 'no tenant stored');
  assert.is(s.cli(['gateways', 'add', 'gw-1', '--tenant', 'acme']).status, 0);
  refused(s.cli(['technicians', 'token', '--gateway', 'gw-1', '--role', 'view', '--name', '--ttl', '1h']), 'INVALID_REQUEST', /--name/, 'technicians token --name --ttl 1h');
  refused(s.cli(['examples', 'export', '--tenant', 'acme', '--out']), 'INVALID_REQUEST', /--out/, 'examples export --out (no value)');
  assert.equal(fs.readdirSync(s.cwd), [], 'no file ./true');
  refused(s.cli(['gateways', 'list', '--tenat', 'acme']), 'INVALID_REQUEST', /unknown option --tenat.*--tenant/, 'gateways list --tenat');
  refused(s.cli(['tenants', 'list', '--tenant', 'acme']), 'INVALID_REQUEST', /unknown option --tenant/, 'an option of another command');
  refused(s.cli(['gateways', 'revoke']), 'INVALID_REQUEST', /needs <id>/, 'missing id');
  refused(s.cli(['gateways', 'revoke', 'gw-1', 'gw-2']), 'INVALID_REQUEST', /unexpected argument `gw-2`/, 'extra argument');
  refused(s.cli(['gateways', 'add', 'gw-2']), 'INVALID_REQUEST', /--tenant is required/, 'required option');
  refused(s.cli(['gateways', 'add', 'gw-2', '--tenant', 'acme', '--tenant', 'beta']), 'INVALID_REQUEST', /--tenant is given more than once/, 'repeated option');
  refused(s.cli(['gateway', 'list']), 'INVALID_REQUEST', /unknown command `gateway list`/, 'unknown command');
  assert.is(s.cli(['gateways', 'list']).stdout.split('\n').length, 1, 'gw-2 was never added');
});

test('every documented command and option still works (relay/README.md, docs/relay-deployment.md)', () => {
  const s = scratch();
  const ok = (args: string[]): string => {
    const r = s.cli(args);
    assert.is(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  ok(['tenants', 'add', 'acme', '--name', 'ACME Rental']);
  ok(['--config', writeJson(s.cwd, 'relay.json', {}), 'tenants', 'add', 'globex']);
  assert.match(ok(['tenants', 'list']), /^acme\tACME Rental\t/m);
  assert.match(ok(['gateways', 'add', 'gw-0042', '--tenant', 'acme', '--name', 'Excavator yard']), /secret \(shown once/);
  ok(['gateways', 'add', 'gw-0043', '--tenant=globex']);
  assert.match(ok(['gateways', 'list', '--tenant', 'acme']), /^gw-0042\tacme\tExcavator yard\toffline\t-\tactive$/);
  assert.match(ok(['tokens', 'issue', '--tenant', 'acme', '--sub', 'alice', '--ttl', '30d']), /^[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.match(ok(['technicians', 'key']), /BEGIN PUBLIC KEY/);
  assert.match(ok(['technicians', 'token', '--gateway', 'gw-0042', '--role', 'upload,teach', '--name', 'alice', '--ttl', '8h']), /^[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.is(ok(['examples', 'export', '--tenant', 'acme', '--gateway', 'gw-0042']), '');
  assert.match(ok(['examples', 'export', '--tenant', 'acme', '--out', 'acme.jsonl']), /0 labelled examples written to acme\.jsonl/);
  assert.match(ok(['gateways', 'revoke', 'gw-0043']), /revoked/);
  assert.match(ok(['--help']), /gateways rotate <id> \[--print-hash\]/);
  refused(s.cli(['rabbitmq', 'config', '--relay-url', 'http://relay.internal:8090']), 'INVALID_REQUEST', /ingress\.rabbitmq is not configured/, 'rabbitmq config without rabbitmq');
});

// 2
test('tokens issue: --ttl parsed as technicians token does, at most 90d; the tenant must exist', async () => {
  const s = scratch();
  assert.is(s.cli(['tenants', 'add', 'acme']).status, 0);
  for (const ttl of ['banana', '0', '100y', '91d', '--ttl=-5d']) {
    const args = ttl.startsWith('--') ? [ttl] : ['--ttl', ttl];
    refused(s.cli(['tokens', 'issue', '--tenant', 'acme', ...args]), 'INVALID_REQUEST', /--ttl/, `--ttl ${ttl}`);
  }
  refused(s.cli(['tokens', 'issue', '--tenant', 'acme', '--ttl', '-5d']), 'INVALID_REQUEST', /--ttl/, '--ttl -5d');
  refused(s.cli(['tokens', 'issue', '--tenant', 'nosuch']), 'UNKNOWN_TENANT', /nosuch/, 'unknown tenant');
  const r = s.cli(['tokens', 'issue', '--tenant', 'acme', '--ttl', '90d']);
  assert.is(r.status, 0, r.stderr);
  const p = await (await createVerifier({ secret: JWT })).verify(r.stdout);
  assert.is(p.tenant, 'acme');
  assert.ok(Math.abs(p.exp! - (Date.now() / 1000 + 90 * 86_400)) < 120, 'expires in 90 days');
});

// 3
test('jwt.secret and jwt.publicKey together are refused, naming both (tokens issue would sign tokens the relay refuses)', () => {
  const s = scratch();
  const file = writeJson(s.cwd, 'relay.json', { jwt: { publicKey: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n', algorithm: 'EdDSA' } });
  refused(s.cli(['--config', file, 'tokens', 'issue', '--tenant', 'acme']), 'CONFIG_INVALID', /jwt\.secret.*jwt\.publicKey/, 'both set');
  try {
    loadRelayConfig({ env: { TU_RELAY_JWT_SECRET: JWT }, file });
    assert.unreachable('accepted');
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.match((err as ConfigError).message, /jwt\.secret.*jwt\.publicKey.*not both/);
  }
  assert.ok(loadRelayConfig({ env: {}, file }).jwt.publicKey, 'the public key alone loads');
});

// 4
test('storage.url sqlite: with no path is refused; a read-only command creates no database at a mistyped path', () => {
  const s = scratch();
  refused(s.cli(['tenants', 'add', 'ghost'], { TU_RELAY_STORAGE_URL: 'sqlite:' }), 'CONFIG_INVALID', /storage\.url: sqlite: needs the path/, 'sqlite: (empty)');
  const typo = path.join(path.dirname(s.dataDir), 'typo', 'relay.sqlite');
  for (const args of [['tenants', 'list'], ['gateways', 'list'], ['examples', 'export', '--tenant', 'acme'], ['tokens', 'issue', '--tenant', 'acme'], ['technicians', 'token', '--gateway', 'g', '--role', 'view', '--name', 'a']]) {
    refused(s.cli(args, { TU_RELAY_STORAGE_URL: `sqlite:${typo}` }), 'STORAGE_UNAVAILABLE', new RegExp(`no relay database at ${typo.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), args.join(' '));
  }
  assert.not.ok(fs.existsSync(path.dirname(typo)), 'neither the database nor its directory created');
  const notRelay = path.join(s.cwd, 'other.sqlite');
  fs.writeFileSync(notRelay, '');
  refused(s.cli(['tenants', 'list'], { TU_RELAY_STORAGE_URL: `sqlite:${notRelay}` }), 'STORAGE_UNAVAILABLE', /is not a relay database/, 'another file');
  assert.is(fs.statSync(notRelay).size, 0, 'left as it was');
  // A command that writes still creates the database (the first `tenants add` of a setup).
  assert.is(s.cli(['tenants', 'add', 'acme'], { TU_RELAY_STORAGE_URL: `sqlite:${typo}` }).status, 0);
  assert.match(s.cli(['tenants', 'list'], { TU_RELAY_STORAGE_URL: `sqlite:${typo}` }).stdout, /^acme\t/);
});

test('PostgreSQL: a read-only command on a schema without the relay tables creates no schema; a write creates it', async () => {
  const schema = `tu_cli_ro_${process.pid}`;
  const url = `${PG_BASE}?schema=${schema}`;
  const schemaExists = async (): Promise<boolean> => {
    const c = new pg.Client({ connectionString: PG_BASE });
    await c.connect();
    try {
      return (await c.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema])).rowCount === 1;
    } finally {
      await c.end();
    }
  };
  try {
    const s = scratch();
    refused(s.cli(['gateways', 'list'], { TU_RELAY_STORAGE_URL: url }), 'STORAGE_UNAVAILABLE', new RegExp(`no relay tables .*schema ${schema}`), 'gateways list');
    const e = await openStorage(url, { existing: true }).then(() => undefined, (err: { code?: string }) => err.code);
    assert.is(e, 'STORAGE_UNAVAILABLE');
    assert.not.ok(await schemaExists(), 'no schema created');
    assert.is(s.cli(['tenants', 'add', 'acme'], { TU_RELAY_STORAGE_URL: url }).status, 0);
    assert.match(s.cli(['tenants', 'list'], { TU_RELAY_STORAGE_URL: url }).stdout, /^acme\t/);
  } finally {
    await dropPgSchema(schema);
  }
});

// 5
test('examples export to a missing directory and an empty signing key: errors naming the file, no stack trace; the key is kept', () => {
  const s = scratch();
  assert.is(s.cli(['tenants', 'add', 'acme']).status, 0);
  refused(s.cli(['examples', 'export', '--tenant', 'acme', '--out', '/nonexistent/dir/x.jsonl']), 'INVALID_REQUEST', /--out \/nonexistent\/dir\/x\.jsonl: the directory \/nonexistent\/dir does not exist/, 'export to a missing directory');
  const key = path.join(s.dataDir, 'technician-signing-key.pem');
  const pem = s.cli(['technicians', 'key']);
  assert.is(pem.status, 0, pem.stderr);
  assert.is(fs.statSync(key).mode & 0o777, 0o600);
  assert.equal(fs.readdirSync(s.dataDir).filter((f) => f.includes('technician')), ['technician-signing-key.pem'], 'no temporary file left');
  assert.is(s.cli(['technicians', 'key']).stdout, pem.stdout, 'the same key on the next run');
  fs.writeFileSync(key, '');
  refused(s.cli(['technicians', 'key']), 'CONFIG_INVALID', new RegExp(`${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is empty.*not replaced`), 'empty key');
  assert.is(s.cli(['gateways', 'add', 'gw-1', '--tenant', 'acme']).status, 0);
  refused(s.cli(['technicians', 'token', '--gateway', 'gw-1', '--role', 'view', '--name', 'a']), 'CONFIG_INVALID', /is empty/, 'token with an empty key');
  assert.is(fs.readFileSync(key, 'utf8'), '', 'not replaced: gateways may hold its public half');
  fs.writeFileSync(key, 'not a key');
  refused(s.cli(['technicians', 'key']), 'CONFIG_INVALID', /does not hold a private key/, 'damaged key');
});

// 6
test('gateways rotate / restore / --print-hash; gateways list shows revoked; no technician token for a revoked or unknown gateway', async () => {
  const s = scratch();
  assert.is(s.cli(['tenants', 'add', 'acme']).status, 0);
  const add = s.cli(['gateways', 'add', 'gw-5', '--tenant', 'acme', '--print-hash']);
  assert.is(add.status, 0, add.stderr);
  const secret0 = /secret \(shown once[^:]*\): (\S+)/.exec(add.stdout)![1]!;
  const hash0 = /secretHash[^:]*: (scrypt\$\S+)/.exec(add.stdout)![1]!;
  assert.ok(await verifySecret(secret0, hash0), 'the printed hash is of the printed secret');
  assert.ok(registryFileSchema.safeParse({ tenants: [{ id: 'acme' }], gateways: [{ id: 'gw-5', tenant: 'acme', secretHash: hash0 }] }).success, 'usable in a registry file');

  const rot = s.cli(['gateways', 'rotate', 'gw-5', '--print-hash']);
  assert.is(rot.status, 0, rot.stderr);
  const secret1 = /secret \(shown once[^:]*\): (\S+)/.exec(rot.stdout)![1]!;
  const hash1 = /secretHash[^:]*: (scrypt\$\S+)/.exec(rot.stdout)![1]!;
  assert.is.not(secret1, secret0);
  assert.ok(await verifySecret(secret1, hash1));
  assert.not.ok(await verifySecret(secret0, hash1), 'the old secret does not verify against the new hash');

  assert.is(s.cli(['gateways', 'revoke', 'gw-5']).status, 0);
  assert.match(s.cli(['gateways', 'list']).stdout, /^gw-5\tacme\t\toffline\t-\trevoked$/);
  refused(s.cli(['technicians', 'token', '--gateway', 'gw-5', '--role', 'view', '--name', 'a']), 'UNKNOWN_GATEWAY', /gw-5 is revoked/, 'token for a revoked gateway');
  refused(s.cli(['technicians', 'token', '--gateway', 'gw-9', '--role', 'view', '--name', 'a']), 'UNKNOWN_GATEWAY', /no gateway gw-9/, 'token for an unknown gateway');
  refused(s.cli(['gateways', 'add', 'gw-5', '--tenant', 'acme']), 'REGISTRY_CONFLICT', /revoked.*gateways restore gw-5/, 'add over a revoked gateway');
  refused(s.cli(['gateways', 'rotate', 'gw-5']), 'REGISTRY_CONFLICT', /revoked.*gateways restore gw-5/, 'rotate does not undo a revocation');
  refused(s.cli(['gateways', 'rotate', 'gw-9']), 'UNKNOWN_GATEWAY', /gw-9/, 'rotate unknown');
  refused(s.cli(['gateways', 'revoke', 'gw-9']), 'UNKNOWN_GATEWAY', /gw-9/, 'revoke unknown');

  const res = s.cli(['gateways', 'restore', 'gw-5']);
  assert.is(res.status, 0, res.stderr);
  assert.match(s.cli(['gateways', 'list']).stdout, /\tactive$/);
  refused(s.cli(['gateways', 'restore', 'gw-5']), 'REGISTRY_CONFLICT', /not revoked.*gateways rotate gw-5/, 'restore an active gateway');
  assert.is(s.cli(['technicians', 'token', '--gateway', 'gw-5', '--role', 'view', '--name', 'a']).status, 0);
});

test('gateways rotate reaches a running relay as a rotation in storage does: the old connection closed, the old secret refused, the new one let in', async () => {
  const dataDir = tmpDir('tu-relay-cli-live-');
  const relay = await startTestRelay({ overrides: { dataDir, 'ingress.credentialCheckMs': 200 } });
  try {
    const env = { PATH: process.env.PATH ?? '', TU_RELAY_JWT_SECRET: JWT, TU_RELAY_DATA_DIR: dataDir };
    const cli = (args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { env, encoding: 'utf8', timeout: 30_000 });
    assert.is(cli(['tenants', 'add', 'acme']).status, 0);
    const secret = /secret \(shown once[^:]*\): (\S+)/.exec(cli(['gateways', 'add', 'gw-live', '--tenant', 'acme']).stdout)![1]!;
    const c = await connectGateway(relay.mqttUrl, 'gw-live', secret);
    c.on('error', () => undefined);
    const gone = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      c.once('close', () => (clearTimeout(timer), resolve(true)));
    });
    const rot = cli(['gateways', 'rotate', 'gw-live']);
    assert.is(rot.status, 0, rot.stderr);
    assert.match(rot.stdout, /its open connections are closed within ingress\.credentialCheckMs/);
    const next = /secret \(shown once[^:]*\): (\S+)/.exec(rot.stdout)![1]!;
    assert.ok(await gone, 'the connection made with the old secret is closed');
    c.end(true);
    const login = (s: string) => connectGateway(relay.mqttUrl, 'gw-live', s).then((x) => (x.end(true), 'connected'), (err: Error) => err.message);
    assert.match(await login(secret), /Bad username or password|Not authorized/i, 'the old secret');
    assert.is(await login(next), 'connected', 'the new secret');
  } finally {
    await relay.stop();
  }
});

// 7
test('a typo inside any nested section of the relay config is refused, naming the key; the shipped env example still loads', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ storage: { retention: { eventsMaxAgeDay: 7 } } }, /storage\.retention: .*eventsMaxAgeDay/],
    [{ log: { lvl: 'debug' } }, /log: .*lvl/],
    [{ http: { prot: 1 } }, /http: .*prot/],
    [{ ingress: { limits: { maxConnectByte: 1 } } }, /ingress\.limits: .*maxConnectByte/],
    [{ ingress: { credentialCheck: 1 } }, /ingress: .*credentialCheck/],
    [{ jwt: { secret: JWT, audiance: 'x' } }, /jwt: .*audiance/],
    [{ graphql: { websocket: { initTimeout: 1 } } }, /graphql\.websocket: .*initTimeout/],
    [{ graphql: { maxDepht: 3 } }, /graphql: .*maxDepht/],
    [{ redis: { url: 'redis://r', keyprefix: 'x' } }, /redis: .*keyprefix/],
    [{ storage: { queuemax: 1 } }, /storage: .*queuemax/],
    [{ ingress: { mode: 'rabbitmq', rabbitmq: { urls: ['amqp://a'], password: 'p'.repeat(16), authSecret: 'a'.repeat(24), cacheTtl: 1 } } }, /ingress\.rabbitmq: .*cacheTtl/],
    [{ ingress: { mode: 'rabbitmq', rabbitmq: { urls: ['amqp://a'], password: 'p'.repeat(16), authSecret: 'a'.repeat(24), management: { urls: ['http://m:15672'], timeout: 1 } } } }, /ingress\.rabbitmq\.management: .*timeout/],
  ];
  const dir = tmpDir('tu-relay-cli-typo-');
  for (const [config, problem] of cases) {
    const file = writeJson(dir, 'relay.json', config);
    try {
      loadRelayConfig({ env: { TU_RELAY_JWT_SECRET: JWT }, file });
      assert.unreachable(`accepted ${JSON.stringify(config)}`);
    } catch (err) {
      assert.instance(err, ConfigError, JSON.stringify(config));
      assert.match((err as ConfigError).message, problem);
    }
  }
  // relay/deploy/relay.env.example, its blanks filled in.
  const env: Record<string, string> = {};
  for (const line of fs.readFileSync(path.join(REPO_ROOT, 'relay/deploy/relay.env.example'), 'utf8').split('\n')) {
    const m = /^(TU_[A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  Object.assign(env, { TU_RELAY_RABBITMQ_PASSWORD: 'p'.repeat(24), TU_RELAY_RABBITMQ_AUTH_SECRET: 'a'.repeat(32), TU_RELAY_JWT_SECRET: JWT });
  assert.is(loadRelayConfig({ env }).ingress.mode, 'rabbitmq');
});

// 8
test('an error in one entry of a list set by an environment variable names the variable', () => {
  try {
    loadRelayConfig({ env: { TU_RELAY_JWT_SECRET: JWT, TU_RELAY_INGRESS_MODE: 'rabbitmq', TU_RELAY_RABBITMQ_URLS: 'amqp://a,http://b', TU_RELAY_RABBITMQ_PASSWORD: 'p'.repeat(16), TU_RELAY_RABBITMQ_AUTH_SECRET: 'a'.repeat(24) } });
    assert.unreachable('accepted');
  } catch (err) {
    assert.instance(err, ConfigError);
    const p = (err as ConfigError).problems.find((x) => x.field === 'ingress.rabbitmq.urls.1');
    assert.is(p?.from, 'env TU_RELAY_RABBITMQ_URLS');
    assert.match((err as ConfigError).message, /ingress\.rabbitmq\.urls\.1: .*\(from env TU_RELAY_RABBITMQ_URLS\)/);
  }
  // The shared loader, as the agent's list variables (TU_STEPS) use it; a prefix of another name is no match.
  const schema = z.object({ steps: z.array(z.enum(['a', 'b'])), stepsMax: z.number().optional() }).strict();
  try {
    loadConfigFile(schema, { what: 'x', env: { X_STEPS: 'a,c' }, envOverrides: { X_STEPS: { path: ['steps'], type: 'list' } }, overrides: { stepsMax: 'no' } });
    assert.unreachable('accepted');
  } catch (err) {
    const problems = (err as ConfigError).problems;
    assert.is(problems.find((x) => x.field === 'steps.1')?.from, 'env X_STEPS');
    assert.is(problems.find((x) => x.field === 'stepsMax')?.from, undefined);
  }
});

function writeJson(dir: string, name: string, value: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(value));
  return file;
}

test.run();
