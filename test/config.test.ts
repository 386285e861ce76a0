import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, HISTORY_PER_MACHINE_MAX, loadAgentConfig, profilePath } from '@tu/firmware-config';
import { captureTimeUtc } from '@tu/agent/internal/services/metadata/sort';
import { tmpDir } from './support/harness.js';

const ROOT = path.resolve(import.meta.dirname, '..');

test('bundled profiles are valid', () => {
  for (const p of ['field-gateway', 'developer']) {
    const c = loadAgentConfig({ file: profilePath(p), env: {} });
    assert.ok(c.gatewayId);
    assert.equal(c.orchestrator.steps, ['recognition', 'comparison', 'metadata']);
  }
});

test('defaults fill what a file leaves out; environment overrides the file', () => {
  const dir = tmpDir();
  const f = path.join(dir, 'c.json');
  fs.writeFileSync(f, JSON.stringify({ gatewayId: 'gw-1', broker: { port: 2000 } }));
  const c = loadAgentConfig({ file: f, env: { TU_MQTT_PORT: '2001', MODEL_DIR: '/models/m', TU_STEPS: 'metadata, recognition' } });
  assert.is(c.broker.port, 2001);
  assert.is(c.model.dir, '/models/m');
  assert.equal(c.orchestrator.steps, ['metadata', 'recognition']);
  assert.is(c.http.port, 8080);
  assert.is(c.orchestrator.retry.maxAttempts, 3);
  assert.is(c.limits.maxUploadBytes, 25 * 1024 * 1024);
});

test('an invalid config names every bad field and where it came from', () => {
  const dir = tmpDir();
  const f = path.join(dir, 'c.json');
  fs.writeFileSync(f, JSON.stringify({ gatewayId: 'bad id!', orchestrator: { retry: { maxAttempts: 0, initialDelayMs: 500, maxDelayMs: 100 } }, typo: 1 }));
  try {
    loadAgentConfig({ file: f, env: { TU_HTTP_PORT: 'eighty' } });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, ConfigError);
    const fields = (err as ConfigError).problems.map((p) => p.field);
    for (const want of ['gatewayId', 'orchestrator.retry.maxAttempts', 'orchestrator.retry.maxDelayMs', 'http.port', '(root)']) assert.ok(fields.includes(want), `names ${want}: ${fields}`);
    assert.match((err as Error).message, /http\.port.*\(from env TU_HTTP_PORT\)/);
  }
  assert.throws(() => loadAgentConfig({ file: path.join(dir, 'missing.json') }), /cannot read config file/);
  fs.writeFileSync(f, '{ not json');
  assert.throws(() => loadAgentConfig({ file: f }), /not valid JSON/);
});

test('a comparison history larger than a comparison can score in time is refused, naming the bound', () => {
  const load = (historyPerMachine: number) => loadAgentConfig({ env: {}, overrides: { gatewayId: 'gw-1', comparison: { historyPerMachine } } });
  assert.is(load(HISTORY_PER_MACHINE_MAX).comparison.historyPerMachine, HISTORY_PER_MACHINE_MAX);
  try {
    load(100_000);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.equal((err as ConfigError).problems.map((p) => p.field), ['comparison.historyPerMachine']);
    assert.match((err as Error).message, new RegExp(`${HISTORY_PER_MACHINE_MAX}`));
  }
});

test('uplink TLS: files only with a TLS url (a plain url would send the secret in clear); cert and key together', () => {
  const load = (uplink: Record<string, unknown>) => loadAgentConfig({ env: {}, overrides: { gatewayId: 'gw-1', uplink } });
  assert.equal(load({ url: 'mqtts://relay:8883', tls: { ca: '/etc/tu-agent/relay-ca.pem' } }).uplink.tls, { ca: '/etc/tu-agent/relay-ca.pem', rejectUnauthorized: true });
  assert.equal(load({ url: 'wss://relay/mqtt' }).uplink.tls, { rejectUnauthorized: true }, 'no CA: the bundled public CAs (agent/src/uplink/relay-connection.ts relayTrust)');
  for (const [uplink, field] of [
    [{ url: 'mqtt://relay:1885', tls: { ca: '/ca.pem' } }, 'uplink.tls'],
    [{ url: 'ws://relay:8090/mqtt', tls: { cert: '/c.pem', key: '/k.pem' } }, 'uplink.tls'],
    [{ url: 'mqtts://relay:8883', tls: { cert: '/c.pem' } }, 'uplink.tls.key'],
    [{ url: 'mqtts://relay:8883', tls: { ca: '/ca.pem', rejectUnauthorized: 'no' } }, 'uplink.tls.rejectUnauthorized'],
  ] as const) {
    try {
      load(uplink);
      assert.unreachable(JSON.stringify(uplink));
    } catch (err) {
      assert.instance(err, ConfigError);
      assert.ok((err as ConfigError).problems.some((p) => p.field === field), `${field}: ${(err as Error).message}`);
    }
  }
});

test('metadata.assumedUtcOffset: only an offset the metadata service can apply is accepted', () => {
  const load = (offset: string) => loadAgentConfig({ env: {}, overrides: { gatewayId: 'gw-1', 'metadata.assumedUtcOffset': offset } }).metadata.assumedUtcOffset;
  const zoneless = { captureTime: '2024-05-01T10:00:00', captureTimeZone: 'unknown' as const };
  for (const offset of ['+02:00', '+05:30', '-03:30', '+14:00', '-12:00', '+00:00']) {
    assert.is(load(offset), offset);
    assert.ok(captureTimeUtc(zoneless, offset), `${offset} places the capture time`);
  }
  // These were accepted, and then every capture time without a zone was silently dropped (the
  // photo's upload time used instead): no such offset exists, and the date parser refuses it.
  for (const offset of ['+24:00', '+02:60', '+99:99', '-13:00', '+14:30']) {
    try {
      load(offset);
      assert.unreachable(offset);
    } catch (err) {
      assert.instance(err, ConfigError, offset);
      assert.ok((err as ConfigError).problems.some((p) => p.field === 'metadata.assumedUtcOffset' && /-12:00.*\+14:00/.test(p.message)), `${offset}: ${(err as Error).message}`);
    }
  }
});

test('a pair of bounds out of order is refused at load, naming both fields, a bound given alone checked against the default of the other', () => {
  const load = (overrides: Record<string, unknown>) => loadAgentConfig({ env: {}, overrides: { gatewayId: 'gw-1', ...overrides } });
  // Accepted before: every photo would then have been flagged too dark or too bright.
  const refused: [Record<string, unknown>, string, RegExp][] = [
    [{ 'metadata.thresholds': { minBrightness: 0.9, maxBrightness: 0.3 } }, 'metadata.thresholds.minBrightness', /metadata\.thresholds\.minBrightness \(0\.9\) must be below metadata\.thresholds\.maxBrightness \(0\.3\)/],
    [{ 'metadata.thresholds': { minBrightness: 0.5, maxBrightness: 0.5 } }, 'metadata.thresholds.minBrightness', /minBrightness \(0\.5\) must be below .*maxBrightness \(0\.5\)/],
    [{ 'metadata.thresholds': { minBrightness: 0.9 } }, 'metadata.thresholds.minBrightness', /minBrightness \(0\.9\) must be below metadata\.thresholds\.maxBrightness \(0\.85, the default\)/],
    [{ 'metadata.thresholds': { maxBrightness: 0.1 } }, 'metadata.thresholds.maxBrightness', /minBrightness \(0\.2, the default\) must be below metadata\.thresholds\.maxBrightness \(0\.1\)/],
    [{ 'comparison.thresholds': { similarityMismatch: 0.8, similarityMatch: 0.7 } }, 'comparison.thresholds.similarityMismatch', /comparison\.thresholds\.similarityMismatch \(0\.8\) must be at most comparison\.thresholds\.similarityMatch \(0\.7\)/],
    [{ 'comparison.thresholds': { similarityMismatch: 0.8 } }, 'comparison.thresholds.similarityMismatch', /similarityMatch \(0\.73, the default\)/],
  ];
  for (const [overrides, field, message] of refused) {
    try {
      load(overrides);
      assert.unreachable(JSON.stringify(overrides));
    } catch (err) {
      assert.instance(err, ConfigError, JSON.stringify(overrides));
      assert.ok((err as ConfigError).problems.some((p) => p.field === field && message.test(p.message)), `${JSON.stringify(overrides)}: ${(err as Error).message}`);
    }
  }
  assert.equal(load({ 'metadata.thresholds': { minBrightness: 0.1, maxBrightness: 0.95 } }).metadata.thresholds, { minBrightness: 0.1, maxBrightness: 0.95 });
  assert.equal(load({ 'metadata.thresholds': { minBrightness: 0.8 } }).metadata.thresholds, { minBrightness: 0.8 });
  assert.equal(load({ 'comparison.thresholds': { similarityMismatch: 0.7, similarityMatch: 0.7 } }).comparison.thresholds, { similarityMismatch: 0.7, similarityMatch: 0.7 }, 'equal: calibrate.ts can suggest it');
});

test('the broker and the HTTP server on the same address are refused at load, naming both fields', () => {
  const load = (overrides: Record<string, unknown>, env: Record<string, string> = {}) => loadAgentConfig({ env, overrides: { gatewayId: 'gw-1', ...overrides } });
  // Accepted before: the agent then exited 1 with a bare `listen EADDRINUSE`.
  const refused: [Record<string, unknown>, Record<string, string>][] = [
    [{ 'http.port': 1884 }, {}], // http 0.0.0.0 (default) and broker 127.0.0.1:1884 (default)
    [{ 'broker.port': 8080 }, {}],
    [{ 'broker.host': '10.0.0.5', 'http.host': '10.0.0.5', 'broker.port': 9000, 'http.port': 9000 }, {}],
    [{ 'broker.host': '::', 'http.host': '127.0.0.1', 'broker.port': 9000, 'http.port': 9000 }, {}],
    [{ 'broker.host': '0.0.0.0', 'http.host': '[::1]', 'broker.port': 9000, 'http.port': 9000 }, {}],
    [{}, { TU_HTTP_PORT: '1884' }],
  ];
  for (const [overrides, env] of refused) {
    const what = JSON.stringify({ overrides, env });
    try {
      load(overrides, env);
      assert.unreachable(what);
    } catch (err) {
      assert.instance(err, ConfigError, what);
      const p = (err as ConfigError).problems.find((x) => x.field === 'http.port');
      assert.ok(p, `${what}: ${(err as Error).message}`);
      assert.match(p!.message, /^http\.port \d+ \(http\.host \S+\) is also broker\.port \(broker\.host \S+\)/, what);
      if (env.TU_HTTP_PORT) assert.match((err as Error).message, /http\.port.*\(from env TU_HTTP_PORT\)/);
    }
  }
  // Apart: other ports, or one port on two specific addresses, or port 0 (any free port) twice.
  for (const overrides of [
    { 'broker.port': 1884, 'http.port': 8080 },
    { 'broker.host': '127.0.0.1', 'http.host': '10.0.0.5', 'broker.port': 9000, 'http.port': 9000 },
    { 'broker.host': '127.0.0.1', 'http.host': '127.0.0.1', 'broker.port': 0, 'http.port': 0 },
  ]) assert.ok(load(overrides), JSON.stringify(overrides));
});

test('the agent refuses to start on a bad config, with a message naming the field', () => {
  const r = spawnSync(process.execPath, ['agent/dist/main.js', '--profile', 'developer'], {
    cwd: ROOT,
    env: { ...process.env, TU_MQTT_PORT: '99999' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.is(r.status, 2);
  assert.match(r.stderr, /broker\.port.*TU_MQTT_PORT/);
});

test.run();
