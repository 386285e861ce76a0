import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Agent } from '@tu/agent';
import { openDeviceState } from '@tu/agent/internal/device/state';
import { inject, startTestAgent, testConfig, tmpDir } from './support/harness.js';

/**
 * Data files damaged on flash (corruption, a power cut the filesystem did not survive) are moved
 * aside at start and the gateway starts (agent/src/fs/set-aside.ts): each of these kept the whole
 * gateway down before, with a raw SyntaxError or SQLITE_NOTADB.
 */
const test = suite<{ agents: Agent[] }>('agent: damaged data files at start');
test.before.each((ctx) => {
  ctx.agents = [];
});
test.after.each(async (ctx) => {
  for (const a of ctx.agents) await a.stop().catch(() => undefined);
});

const machine = { id: 'EX-042', type: 'excavator', brand: 'Acme', model: 'X1', serialNumber: 'SN1' };
const health = async (a: Agent) => (await inject(a, { method: 'GET', url: '/api/v1/health' })).json<{ status: string; reasons: string[] }>();
const start = async (ctx: { agents: Agent[] }, dataDir: string) => {
  const a = await startTestAgent({ config: testConfig({}, dataDir) });
  ctx.agents.push(a);
  return a;
};
const aside = (dataDir: string, name: string) => fs.readdirSync(dataDir).filter((f) => f.startsWith(`${name}.bad-`));

for (const [what, damage, keepsMachine] of [
  ['truncated', (t: string) => t.slice(0, Math.floor(t.length / 2)), false],
  ['empty', () => '', false],
  ['NUL-filled (ext4 after a power cut)', (t: string) => '\0'.repeat(t.length), false],
  [
    'valid JSON with one bad reference photo',
    (t: string) => {
      const d = JSON.parse(t) as { references: unknown[] };
      d.references = [{ sha256: 'x', embedding: [], addedAt: 'yesterday' }, { sha256: 'a'.repeat(64), embedding: [1, 0], addedAt: new Date().toISOString() }];
      return JSON.stringify(d);
    },
    true,
  ],
] as const) {
  test(`device.json ${what}: the gateway starts, the file is moved aside, what could be read is kept, health says so until the next start`, async (ctx) => {
    const dataDir = tmpDir('tu-dev-');
    const a = await start(ctx, dataDir);
    assert.is((await inject(a, { method: 'PUT', url: '/api/v1/machine', payload: machine })).statusCode, 200);
    await a.stop();
    const file = path.join(dataDir, 'device.json');
    const damaged = damage(fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(file, damaged);

    const b = await start(ctx, dataDir);
    assert.is(b.device.machine()?.id, keepsMachine ? 'EX-042' : undefined);
    if (keepsMachine) assert.equal(b.device.references().map((r) => r.sha256[0]), ['a'], 'the valid reference kept, the bad one dropped');
    const [moved] = aside(dataDir, 'device.json');
    assert.ok(moved, 'moved aside');
    assert.is(fs.readFileSync(path.join(dataDir, moved!), 'utf8'), damaged, 'kept as it was, for recovery');
    const h = await health(b);
    assert.is(h.status, 'degraded');
    assert.ok(h.reasons.some((r) => r.includes('device state') && r.includes(moved!)), JSON.stringify(h.reasons));
    assert.is((await inject(b, { method: 'PUT', url: '/api/v1/machine', payload: { ...machine, brand: 'Again' } })).statusCode, 200);
    await b.stop();

    const c = await start(ctx, dataDir);
    assert.is(c.device.machine()?.brand, 'Again');
    assert.not.ok((await health(c)).reasons.some((r) => r.includes('device state')), 'nothing set aside at this start');
  });
}

for (const [file, what] of [
  ['history.sqlite', 'photo history'],
  ['examples.sqlite', "technicians' labels"],
] as const) {
  for (const [how, damage] of [
    ['garbage', (p: string) => fs.writeFileSync(p, Buffer.alloc(8192, 0x5a))],
    ['truncated', (p: string) => fs.truncateSync(p, 1536)],
  ] as const) {
    test(`${file} ${how}: the gateway starts with a new one, the old one moved aside and named in health`, async (ctx) => {
      const dataDir = tmpDir('tu-sq-');
      await (await start(ctx, dataDir)).stop();
      const p = path.join(dataDir, file);
      assert.ok(fs.existsSync(p));
      damage(p);
      const b = await start(ctx, dataDir);
      const moved = aside(dataDir, file).filter((f) => !f.endsWith('-wal') && !f.endsWith('-shm'));
      assert.is(moved.length, 1);
      const h = await health(b);
      assert.ok(h.reasons.some((r) => r.includes(what) && r.includes('SQLITE_')), JSON.stringify(h.reasons));
    });
  }
}

test('device state: temp files of interrupted writes are removed at open; two changes at once both land', async () => {
  const dir = tmpDir('tu-dev-');
  fs.writeFileSync(path.join(dir, '.device.json.0123456789ab.tmp'), 'x'.repeat(1000));
  fs.writeFileSync(path.join(dir, '.other.json.0123456789ab.tmp'), 'not ours');
  const d = await openDeviceState(dir);
  assert.equal(fs.readdirSync(dir).sort(), ['.other.json.0123456789ab.tmp']);
  // Each change starts from the state its predecessor left: a reference added while the profile
  // is saved is not lost.
  const at = new Date().toISOString();
  await Promise.all([d.addReference({ sha256: 'a'.repeat(64), embedding: [1, 0], addedAt: at }), d.setMachine({ type: 'excavator' }), d.addReference({ sha256: 'b'.repeat(64), embedding: [0, 1], addedAt: at })]);
  const again = await openDeviceState(dir);
  assert.equal(again.references().map((r) => r.sha256[0]), ['a', 'b']);
  assert.is(again.machine()?.type, 'excavator');
});

test.run();
