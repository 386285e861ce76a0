/**
 * Files the agent creates once and reads at every start (the technician key, the bus secret)
 * survive a power cut right after they are made, and a file that did not (empty: its data was
 * not on disk yet when the power went) no longer keeps the gateway from starting.
 */
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readOrCreateDeviceKey, readOrCreateSecret } from '@tu/agent';
import { createFileDurableSync } from '@tu/agent/internal/fs/durable';
import { startTestAgent, testConfig, tmpDir } from './support/harness.js';

const t = suite('files made once: durable, and an empty one left by a power cut is replaced');
const publicPem = (k: ReturnType<typeof readOrCreateDeviceKey>) => k.export({ type: 'pkcs8', format: 'pem' }).toString();

t('createFileDurableSync creates once, with its mode, and leaves no temp file behind', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'secret');
  assert.ok(createFileDurableSync(file, 'first', 0o600));
  assert.not.ok(createFileDurableSync(file, 'second', 0o600), 'the file exists: not replaced');
  assert.is(fs.readFileSync(file, 'utf8'), 'first');
  assert.is(fs.statSync(file).mode & 0o777, 0o600);
  assert.equal(fs.readdirSync(dir), ['secret']);
});

t('an empty or damaged technician key is set aside and replaced; a good one is kept', () => {
  for (const content of ['', '-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n']) {
    const dir = tmpDir();
    const file = path.join(dir, 'technician-key.pem');
    fs.writeFileSync(file, content);
    const warnings: unknown[] = [];
    const key = readOrCreateDeviceKey(dir, { warn: (o: unknown) => warnings.push(o) });
    assert.is(publicPem(readOrCreateDeviceKey(dir)), publicPem(key), 'the new key is the one kept');
    const aside = fs.readdirSync(dir).filter((f) => f.startsWith('technician-key.pem.bad-'));
    assert.is(aside.length, 1, 'the bad file is kept aside, not deleted');
    assert.is(fs.readFileSync(path.join(dir, aside[0]!), 'utf8'), content);
    assert.is(warnings.length, 1);
  }
});

t('the agent starts with an empty technician key in its data dir (it refused to start before)', async () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'technician-key.pem'), '');
  const agent = await startTestAgent({ config: testConfig({}, dir) });
  try {
    assert.ok(fs.statSync(path.join(dir, 'technician-key.pem')).size > 0);
  } finally {
    await agent.stop();
  }
});

t('an empty bus secret file is replaced by a new secret, which later starts read back', () => {
  const file = path.join(tmpDir(), 'bus-secret');
  fs.writeFileSync(file, '');
  const secret = readOrCreateSecret(file);
  assert.ok(secret.length >= 32);
  assert.is(readOrCreateSecret(file), secret);
  assert.is(fs.statSync(file).mode & 0o777, 0o600);
});

t.run();
