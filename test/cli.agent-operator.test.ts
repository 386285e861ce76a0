/**
 * The operator commands of `tu-agent` (install, provision, update, token, config validate) run
 * from the checkout's agent/dist against folders under a temp root, the way a gateway runs them
 * with `--root`: no release is built. `install` needs a release layout, so one is faked: a copy of
 * agent/dist with a release.json beside it (agent/src/release/layout.ts) and node_modules linked.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, loadAgentConfig, profilePath } from '@tu/firmware-config';
import { UsageError } from '../agent/src/cli/args.js';
import { tokenCommand } from '../agent/src/cli/token.js';
import { writeFileDurable } from '../agent/src/fs/durable.js';
import { REPO_ROOT } from './support/data.js';
import { tmpDir } from './support/harness.js';

const MAIN = path.join(REPO_ROOT, 'agent/dist/main.js');
const RELEASE = (version: string) => ({ name: 'tu-agent', version, commit: 'abc', builtAt: '2026-11-30T00:00:00Z', arch: process.arch, node: process.version, model: { id: 'm', version: '1', file: 'm.onnx' }, head: null });
const NOGROUP = 65534;
const isRoot = process.getuid?.() === 0;

/** Runs `tu-agent ARGS` with only PATH and `env` set: no TU_* of this shell leaks in. */
function cli(args: string[], env: Record<string, string> = {}): { status: number | null; out: string; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd: tmpDir('tu-cli-cwd-'), env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, out: r.stdout + r.stderr };
}

/** A root as `tu-agent install --root` leaves it: /etc/tu-agent/config.json from the field profile. */
function installedRoot(config: Record<string, unknown> = {}): { root: string; etc: string; configFile: string; secretFile: string } {
  const root = tmpDir('tu-cli-root-');
  const etc = path.join(root, 'etc/tu-agent');
  fs.mkdirSync(etc, { recursive: true, mode: 0o750 });
  const profile = JSON.parse(fs.readFileSync(profilePath('field-gateway'), 'utf8')) as Record<string, unknown>;
  delete profile.$schema;
  const configFile = path.join(etc, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify({ ...profile, ...config }, null, 2), { mode: 0o640 });
  const secretFile = path.join(root, 'secret.txt');
  fs.writeFileSync(secretFile, 'a-gateway-secret-from-the-relay-0001\n');
  return { root, etc, configFile, secretFile };
}

const provision = (root: string, secretFile: string, ...extra: string[]) => cli(['provision', '--root', root, '--gateway-id', 'gw-1234', '--relay', 'mqtts://relay.example:8883', '--secret-file', secretFile, ...extra]);
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;

let caDir: string | undefined;
/** A CA certificate made with openssl (as test/relay.tls.test.ts does). */
function caPem(): string {
  if (!caDir) {
    caDir = tmpDir('tu-cli-ca-');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=TU test CA'], { cwd: caDir, stdio: ['ignore', 'ignore', 'pipe'] });
  }
  return path.join(caDir, 'ca.pem');
}

// 1
test('provision keeps the owner and group of the config and the secret (the service user must still read them)', async () => {
  if (!isRoot) {
    console.log('  (skipped: needs root to give files a group)');
    return;
  }
  const { root, etc, configFile, secretFile } = installedRoot();
  fs.chownSync(etc, 0, NOGROUP);
  fs.chownSync(configFile, 0, NOGROUP);
  const r = provision(root, secretFile, '--technician-key', writeTechnicianKey(root));
  assert.is(r.status, 0, r.out);
  for (const f of ['config.json', 'uplink-secret', 'relay-technician-key.pem']) {
    const st = fs.statSync(path.join(etc, f));
    assert.is(st.gid, NOGROUP, `${f} keeps the install-time group`);
    assert.is(st.uid, 0, f);
  }
  assert.is(fs.statSync(configFile).mode & 0o777, 0o640);
  assert.is(fs.statSync(path.join(etc, 'uplink-secret')).mode & 0o777, 0o640);
  // Provisioned again: the secret it replaces keeps its owner too.
  fs.chownSync(path.join(etc, 'uplink-secret'), NOGROUP, NOGROUP);
  assert.is(provision(root, secretFile).status, 0);
  assert.is(fs.statSync(path.join(etc, 'uplink-secret')).uid, NOGROUP);
});

function writeTechnicianKey(root: string): string {
  const file = path.join(root, 'relay-technician-key.pem');
  fs.writeFileSync(file, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString());
  return file;
}

test('writeFileDurable gives the file its mode from the start (the temp file is never 0644)', async () => {
  const file = path.join(tmpDir(), 'secret');
  await writeFileDurable(file, 'x\n', { mode: 0o600 });
  assert.is(fs.statSync(file).mode & 0o777, 0o600);
});

// 2
test('update: a restart command that fails rolls back; the unverified version does not stay current', () => {
  const { root, prefix, tarball } = updateRoot('0.2.0');
  const r = cli(['update', tarball, '--root', root, '--restart-command', 'exit 3', '--timeout-s', '1']);
  assert.is(r.status, 1, r.out);
  assert.match(r.out, 'UPDATE_UNHEALTHY');
  assert.is(fs.readlinkSync(path.join(prefix, 'current')), '0.1.0', 'current is the old version again');
  assert.not.ok(fs.existsSync(path.join(prefix, '0.2.0')), 'the new version is removed');
  assert.not.ok(fs.existsSync(path.join(prefix, 'previous')));
});

/** An installed 0.1.0 under a temp root and a tarball of `version` (only release.json: enough for update). */
function updateRoot(version: string, release: unknown = RELEASE(version)): { root: string; prefix: string; tarball: string } {
  const { root } = installedRoot({ http: { host: '127.0.0.1', port: 9 } });
  const prefix = path.join(root, 'opt/tu-agent');
  fs.mkdirSync(path.join(prefix, '0.1.0'), { recursive: true });
  fs.writeFileSync(path.join(prefix, '0.1.0/release.json'), JSON.stringify(RELEASE('0.1.0')));
  // An install from before the version links were relative (agent/src/cli/links.ts): still read.
  fs.symlinkSync(path.join(prefix, '0.1.0'), path.join(prefix, 'current'));
  const pkg = tmpDir('tu-cli-pkg-');
  for (const dir of [path.join(prefix, '0.1.0'), path.join(pkg, 'tu-agent')]) fs.mkdirSync(path.join(dir, 'systemd'), { recursive: true });
  // Each version installs its own unit (agent/src/cli/unit-file.ts).
  fs.copyFileSync(path.join(REPO_ROOT, 'agent/systemd/tu-agent.service'), path.join(prefix, '0.1.0/systemd/tu-agent.service'));
  fs.copyFileSync(path.join(REPO_ROOT, 'agent/systemd/tu-agent.service'), path.join(pkg, 'tu-agent/systemd/tu-agent.service'));
  fs.writeFileSync(path.join(pkg, 'tu-agent/release.json'), typeof release === 'string' ? release : JSON.stringify(release));
  const tarball = path.join(pkg, 'new.tar.gz');
  execFileSync('tar', ['-czf', tarball, '-C', pkg, 'tu-agent']);
  return { root, prefix, tarball };
}

// 3
test('--timeout-s must be a whole number of seconds from 1: anything else is a usage error (exit 2)', () => {
  const { root, prefix, tarball } = updateRoot('0.2.0');
  for (const bad of ['abc', '0', '-1', '1.5', '', '1e3', '99999']) {
    for (const cmd of [['update', tarball], ['rollback']]) {
      const r = cli([...cmd, '--root', root, '--restart-command', 'true', `--timeout-s=${bad}`]);
      assert.is(r.status, 2, `${cmd[0]} --timeout-s=${bad}: ${r.out}`);
      assert.match(r.stderr, '--timeout-s');
    }
  }
  assert.is(fs.readlinkSync(path.join(prefix, 'current')), path.join(prefix, '0.1.0'), 'nothing was switched');
});

// 4
test('provision --ca: a file that is not a PEM X.509 certificate is refused, and nothing is written before everything is checked', () => {
  const { root, etc, configFile, secretFile } = installedRoot();
  const before = fs.readFileSync(configFile, 'utf8');
  const notCert = path.join(root, 'not-a-cert.pem');
  fs.writeFileSync(notCert, 'hello\n');
  const garbled = path.join(root, 'garbled.pem');
  fs.writeFileSync(garbled, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
  for (const ca of [notCert, garbled]) {
    const r = provision(root, secretFile, '--ca', ca);
    assert.is(r.status, 2, r.out);
    assert.match(r.stderr, /X\.509/);
    assert.not.ok(fs.existsSync(path.join(etc, 'relay-ca.pem')), 'no CA written');
    assert.not.ok(fs.existsSync(path.join(etc, 'uplink-secret')), 'no secret written');
    assert.is(fs.readFileSync(configFile, 'utf8'), before);
  }
  // A good CA with a bad gateway id: refused before the CA is copied over the installed one.
  const installedCa = path.join(etc, 'relay-ca.pem');
  fs.writeFileSync(installedCa, 'the CA installed before\n');
  const bad = cli(['provision', '--root', root, '--gateway-id', 'bad id!', '--relay', 'mqtts://relay.example:8883', '--secret-file', secretFile, '--ca', caPem()]);
  assert.is(bad.status, 2, bad.out);
  assert.match(bad.stderr, 'nothing was written');
  assert.is(fs.readFileSync(installedCa, 'utf8'), 'the CA installed before\n');
  const good = provision(root, secretFile, '--ca', caPem());
  assert.is(good.status, 0, good.out);
  assert.is(fs.readFileSync(installedCa, 'utf8'), fs.readFileSync(caPem(), 'utf8'));
  assert.equal(readJson(configFile).uplink!.tls, { ca: '/etc/tu-agent/relay-ca.pem' });
});

// 5
test('provision removes an uplink.password and username left from before (they would win over the new secret file)', () => {
  const { root, configFile, secretFile } = installedRoot({ uplink: { url: 'mqtt://old:1885', username: 'old-user', password: 'old-password-0000', keepaliveS: 45 } });
  const r = provision(root, secretFile);
  assert.is(r.status, 0, r.out);
  const uplink = readJson(configFile).uplink!;
  assert.equal(uplink, { url: 'mqtts://relay.example:8883', keepaliveS: 45, passwordFile: '/etc/tu-agent/uplink-secret' });
});

// 6
test('an empty option value is refused, not taken as absent (token --role \'\' handed out every role)', async () => {
  const { configFile, dataDir } = tokenConfig();
  for (const opt of ['--role', '--ttl', '--name']) {
    for (const args of [[opt, ''], [`${opt}=`], [opt, ' ']]) {
      const r = cli(['token', '--config', configFile, ...args]);
      assert.is(r.status, 2, `${args.join(' ')}: ${r.out}`);
      assert.is(r.stdout, '', 'no token printed');
      assert.match(r.stderr, `${opt} is empty`);
    }
  }
  // The command itself refuses them too (tokenCommand is not only reached through the argument parser).
  const config = loadAgentConfig({ env: {}, file: configFile });
  for (const o of [{ role: '' }, { ttl: '' }, { name: '' }]) {
    await rejectsWith(() => tokenCommand(config, o, () => undefined, () => undefined), UsageError, JSON.stringify(o));
  }
  assert.not.ok(fs.existsSync(dataDir), 'no device key made');
  for (const args of [['--root', ''], ['--ca=']]) {
    const r = cli(['provision', '--gateway-id', 'gw-1', '--relay', 'mqtts://r:8883', '--secret-file', '/nonexistent', ...args]);
    assert.is(r.status, 2, r.out);
    assert.match(r.stderr, 'is empty');
  }
  const ok = cli(['token', '--config', configFile, '--role', 'view', '--ttl', '1h', '--name', 'bob']);
  assert.is(ok.status, 0, ok.out);
  assert.match(ok.stderr, '(view)');
});

async function rejectsWith(f: () => Promise<unknown>, kind: new (...a: never[]) => Error, what: string): Promise<void> {
  try {
    await f();
  } catch (err) {
    assert.instance(err, kind, `${what}: ${String(err)}`);
    return;
  }
  assert.unreachable(`${what} was accepted`);
}

function tokenConfig(): { configFile: string; dataDir: string } {
  const dir = tmpDir('tu-cli-token-');
  const dataDir = path.join(dir, 'data');
  const configFile = path.join(dir, 'agent.json');
  fs.writeFileSync(configFile, JSON.stringify({ gatewayId: 'gw-token', dataDir }));
  return { configFile, dataDir };
}

// 7
test('install --root makes only its own folders 0750; /etc, /var and /var/lib get the usual mode', () => {
  const app = fakeRelease('0.1.0');
  const root = tmpDir('tu-cli-install-');
  const r = spawnSync(process.execPath, [path.join(app, 'main.js'), 'install', '--root', root, '--no-system'], { env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8', timeout: 60_000 });
  assert.is(r.status, 0, r.stdout + r.stderr);
  const mode = (p: string) => fs.statSync(path.join(root, p)).mode & 0o777;
  const usual = 0o777 & ~process.umask();
  for (const parent of ['etc', 'var', 'var/lib', 'opt', 'usr/local/bin', 'etc/systemd/system']) assert.is(mode(parent), usual, `${parent}: ${mode(parent).toString(8)}`);
  for (const own of ['etc/tu-agent', 'var/lib/tu-agent']) assert.is(mode(own), 0o750, own);
  assert.is(mode('etc/tu-agent/config.json'), 0o640);
  assert.is(readJson(path.join(root, 'etc/tu-agent/config.json')).dataDir as unknown, '/var/lib/tu-agent');
});

/** agent/dist laid out as a release (<app>/main.js beside <app>/release.json), its packages linked beside it. */
function fakeRelease(version: string): string {
  const dir = tmpDir('tu-cli-release-');
  const app = path.join(dir, 'tu-agent');
  fs.cpSync(path.join(REPO_ROOT, 'agent/dist'), app, { recursive: true });
  fs.writeFileSync(path.join(app, 'release.json'), JSON.stringify(RELEASE(version)));
  fs.mkdirSync(path.join(app, 'systemd'));
  fs.copyFileSync(path.join(REPO_ROOT, 'agent/systemd/tu-agent.service'), path.join(app, 'systemd/tu-agent.service'));
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return app;
}

// 8
test('credentials in uplink.url are refused (pointing to passwordFile) and never printed', () => {
  const dir = tmpDir();
  const f = path.join(dir, 'agent.json');
  fs.writeFileSync(f, JSON.stringify({ gatewayId: 'gw-1', uplink: { url: 'mqtts://gw-1:hunter2-secret@relay.example:8883' } }));
  const r = cli(['config', 'validate', f]);
  assert.is(r.status, 2, r.out);
  assert.not.match(r.out, 'hunter2');
  assert.match(r.stderr, /uplink\.url.*passwordFile/);
  try {
    loadAgentConfig({ env: {}, overrides: { gatewayId: 'gw-1', uplink: { url: 'wss://user@relay.example/mqtt' } } });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.equal((err as ConfigError).problems.map((p) => p.field), ['uplink.url']);
  }
  assert.is(loadAgentConfig({ env: {}, overrides: { gatewayId: 'gw-1', uplink: { url: 'wss://relay.example/mqtt/@x' } } }).uplink.url, 'wss://relay.example/mqtt/@x', 'an @ in the path is no user info');
  const { root, configFile, secretFile } = installedRoot();
  const before = fs.readFileSync(configFile, 'utf8');
  const p = cli(['provision', '--root', root, '--gateway-id', 'gw-1234', '--relay', 'mqtts://gw-1234:hunter2-secret@relay.example:8883', '--secret-file', secretFile]);
  assert.is(p.status, 2, p.out);
  assert.not.match(p.out, 'hunter2');
  assert.is(fs.readFileSync(configFile, 'utf8'), before);
});

// 9
test('update: release.json from the tarball is checked; a version that is not a plain version never names a folder', () => {
  for (const version of ['../../etc', '0.2.0/../../../etc', '..']) {
    const { root, prefix, tarball } = updateRoot(version);
    const r = cli(['update', tarball, '--root', root, '--restart-command', 'true', '--timeout-s', '1']);
    assert.is(r.status, 1, r.out);
    assert.match(r.stderr, /INSTALL_FAILED: .*tu-agent\/release\.json is not a usable tu-agent release: version:/);
    assert.ok(fs.existsSync(path.join(root, 'etc/tu-agent/config.json')), `${version}: /etc is still there`);
    assert.is(fs.readlinkSync(path.join(prefix, 'current')), path.join(prefix, '0.1.0'));
  }
  const { root, tarball } = updateRoot('x', '{ "name": "tu-agent", ');
  const r = cli(['update', tarball, '--root', root, '--restart-command', 'true', '--timeout-s', '1']);
  assert.is(r.status, 1, r.out);
  assert.match(r.stderr, /release\.json is not valid JSON/);
});

// 10
test('config validate checks the file alone: a value from this shell does not make it valid', () => {
  const f = path.join(tmpDir(), 'agent.json');
  fs.writeFileSync(f, JSON.stringify({ dataDir: '/var/lib/tu-agent' }));
  const r = cli(['config', 'validate', f], { TU_GATEWAY_ID: 'gw-from-shell' });
  assert.is(r.status, 2, r.out);
  assert.match(r.stderr, 'gatewayId');
  fs.writeFileSync(f, JSON.stringify({ gatewayId: 'gw-file', http: { port: 8080 } }));
  const ok = cli(['config', 'validate', f], { TU_HTTP_PORT: 'eighty' });
  assert.is(ok.status, 0, ok.out);
  assert.match(ok.stdout, 'valid (gateway gw-file');
  assert.match(ok.stdout, 'this shell sets TU_HTTP_PORT');
});

// 11
test('provision with a broken config file: a config error naming the file, exit 2', () => {
  const { root, configFile, secretFile } = installedRoot();
  fs.writeFileSync(configFile, '{ "gatewayId": ');
  const r = provision(root, secretFile);
  assert.is(r.status, 2, r.out);
  assert.match(r.stderr, `config file ${configFile} is not valid JSON`);
});

// 12
test('an option a command does not use is refused (token --root used to sign with another data dir)', () => {
  const { configFile, dataDir } = tokenConfig();
  const other = tmpDir('tu-cli-other-root-');
  const r = cli(['token', '--config', configFile, '--root', other]);
  assert.is(r.status, 2, r.out);
  assert.match(r.stderr, 'tu-agent token does not use --root');
  assert.not.ok(fs.existsSync(dataDir), 'no device key made');
  assert.equal(fs.readdirSync(other), []);
  for (const args of [
    ['status', '--root', other],
    ['config', 'validate', configFile, '--root', other],
    ['install', '--role', 'view'],
    ['update', 'x.tgz', '--purge'],
    ['provision', '--root', other, '--ttl', '1h'],
  ]) {
    const x = cli(args);
    assert.is(x.status, 2, `${args.join(' ')}: ${x.out}`);
    assert.match(x.stderr, 'does not use');
  }
});

// 13
test('a typo inside any section of the config is refused, naming the key', () => {
  const cases: [Record<string, unknown>, string, string][] = [
    [{ http: { prot: 9090 } }, 'http', 'prot'],
    [{ storage: { maxbytes: 1 } }, 'storage', 'maxbytes'],
    [{ orchestrator: { maxConcurent: 5 } }, 'orchestrator', 'maxConcurent'],
    [{ orchestrator: { retry: { maxAttempt: 5 } } }, 'orchestrator.retry', 'maxAttempt'],
    [{ services: { vison: false } }, 'services', 'vison'],
    [{ log: { lvl: 'debug' } }, 'log', 'lvl'],
    [{ broker: { maxPayload: 5 } }, 'broker', 'maxPayload'],
    [{ bus: { secretfile: '/x' } }, 'bus', 'secretfile'],
    [{ model: { headpath: 'x' } }, 'model', 'headpath'],
    [{ comparison: { historyPerMachin: 3 } }, 'comparison', 'historyPerMachin'],
    [{ comparison: { thresholds: { similarityMacth: 0.9 } } }, 'comparison.thresholds', 'similarityMacth'],
    [{ metadata: { thresholds: { minSharpnes: 1 } } }, 'metadata.thresholds', 'minSharpnes'],
    [{ metadata: { assumedUtcOfset: '+01:00' } }, 'metadata', 'assumedUtcOfset'],
    [{ limits: { maxUploadByte: 1 } }, 'limits', 'maxUploadByte'],
    [{ uplink: { url: 'mqtts://r:8883', tls: { CA: '/ca.pem' } } }, 'uplink.tls', 'CA'],
    [{ uplink: { outbox: { maxEvent: 5 } } }, 'uplink.outbox', 'maxEvent'],
    [{ uplink: { reconnect: { maxDelay: 5 } } }, 'uplink.reconnect', 'maxDelay'],
  ];
  for (const [overrides, field, key] of cases) {
    try {
      loadAgentConfig({ env: {}, overrides: { gatewayId: 'gw-1', ...overrides } });
      assert.unreachable(`${field}.${key} accepted`);
    } catch (err) {
      assert.instance(err, ConfigError, String(err));
      const p = (err as ConfigError).problems.find((x) => x.field === field);
      assert.ok(p, `${field}.${key}: ${(err as Error).message}`);
      assert.match(p.message, key);
    }
  }
});

test('npm run package refuses a --version the installed agent would refuse, before building anything', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'scripts/release/package.ts'), '--version', '../../etc', '--arch', 'x64', '--out', tmpDir()], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 60_000 });
  assert.is.not(r.status, 0, r.stdout);
  assert.match(r.stderr, /--version: a version like 1\.2\.3/);
});

test('words a command does not take are refused, exit 2 (`run vision` used to start a whole second agent)', () => {
  const env = { TU_DATA_DIR: tmpDir('tu-cli-data-'), TU_HTTP_PORT: '0', TU_MQTT_PORT: '0', TU_BUS_SECRET: 'a-bus-secret-for-the-cli-test-000000' };
  for (const args of [['run', 'vision'], ['version', 'extra'], ['logs', 'extra'], ['token', 'view'], ['status', 'now'], ['credentials', 'intake', 'extra'], ['rollback', 'extra']]) {
    const r = cli(args, env);
    assert.is(r.status, 2, `${args.join(' ')}: ${r.out.slice(0, 300)}`);
    assert.match(r.stderr, /unexpected: /, args.join(' '));
  }
  assert.match(cli(['run', 'vision'], env).stderr, /run --service NAME/);
  // What they do take still works.
  assert.is(cli(['version']).status, 0);
  assert.is(cli(['credentials', 'intake'], env).status, 0);
});

// 14
test('token --ttl beyond auth.maxTokenTtlS is a usage mistake: exit 2 naming the range (it exited 1 with INVALID_REQUEST)', () => {
  const { configFile, dataDir } = tokenConfig();
  const r = cli(['token', '--config', configFile, '--ttl', '99999h']);
  assert.is(r.status, 2, r.out);
  assert.is(r.stdout, '', 'no token printed');
  assert.match(r.stderr, 'from 60 s (1m) to 604800 s (7d, auth.maxTokenTtlS)');
  assert.not.ok(fs.existsSync(dataDir), 'no device key made');
  assert.is(cli(['token', '--config', configFile, '--ttl', '7d']).status, 0, 'the maximum itself is accepted');
});

// 15
test('token --role with an empty element is refused naming --role (view,,upload silently dropped it)', () => {
  const { configFile } = tokenConfig();
  for (const list of ['view,,upload', 'view,', ',view', 'view, ,upload']) {
    const r = cli(['token', '--config', configFile, '--role', list]);
    assert.is(r.status, 2, `${list}: ${r.out}`);
    assert.is(r.stdout, '', 'no token printed');
    assert.match(r.stderr, `--role ${JSON.stringify(list)} has an empty role`);
  }
  const ok = cli(['token', '--config', configFile, '--role', 'view, upload']);
  assert.is(ok.status, 0, ok.out);
  assert.match(ok.stderr, '(view, upload)');
});

test.run();
