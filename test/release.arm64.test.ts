/**
 * The linux-arm64 release artifact under user-mode emulation (Debian qemu-user-static with
 * the arm64 C/C++ runtime from multiarch; .ci/run installs both). Slow: building the
 * artifact cross-compiles better-sqlite3 once (~2 min, cached in dist/cache) and the
 * emulated agent starts in about half a minute, so it runs only with TU_TEST_ARM64=1 (.ci/run sets it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { photoBytes } from './support/data.js';
import { freePort } from './support/processes.js';
import { artifact, envI, freshHome, startDetached, stopChild, unpack, waitHealth } from './support/release.js';
import { bearerFor } from './support/harness.js';

const enabled = process.env.TU_TEST_ARM64 === '1';
const QEMU = '/usr/bin/qemu-aarch64-static';
/** Two Cortex-A72 cores (a Raspberry-Pi-class gateway), as the arm64 kernel reports them. */
const ARM64_CPUINFO = [0, 1]
  .map((n) => `processor\t: ${n}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n`)
  .join('\n');

test(`arm64 artifact under qemu: one real photo to analysis.completed${enabled ? '' : ' (skipped: set TU_TEST_ARM64=1)'}`, async () => {
  if (!enabled) return;
  assert.ok(fs.existsSync(QEMU), 'qemu-user-static is installed (.ci/run installs it)');
  const t0 = Date.now();
  const app = unpack(artifact('0.1.0-arm64', 'arm64'));
  const release = JSON.parse(fs.readFileSync(path.join(app, 'release.json'), 'utf8')) as { arch: string };
  assert.is(release.arch, 'arm64');
  const built = Date.now();
  const data = path.join(freshHome(), 'data');
  const [http, bus] = [await freePort(), await freePort()];
  // The launcher execs runtime/bin/node; without binfmt_misc the emulator has to be named, so
  // this runs what the launcher runs, under qemu. qemu-user shows the program the host's x86
  // /proc/cpuinfo, on which onnxruntime's CPU detection crashes (a real arm64 gateway has its
  // own): an arm64 one is bound over it in a private mount namespace, for this process only.
  const cpuinfo = path.join(freshHome(), 'cpuinfo');
  fs.writeFileSync(cpuinfo, ARM64_CPUINFO);
  const argv = envI({ TU_GATEWAY_ID: 'gw-arm64', TU_DATA_DIR: data, TU_HTTP_PORT: String(http), TU_MQTT_PORT: String(bus), MALLOC_ARENA_MAX: '2' }, [QEMU, path.join(app, 'runtime/bin/node'), '--max-semi-space-size=1', path.join(app, 'lib/main.js'), 'run']);
  const agent = startDetached(['unshare', '--mount', 'sh', '-c', `mount --bind ${cpuinfo} /proc/cpuinfo && exec "$@"`, 'sh', ...argv]);
  try {
    // Signed like `tu-agent token` does, with the device key the agent created in its data dir.
    const auth = await bearerFor('gw-arm64', data);
    const health = await waitHealth(http, 300_000, agent, auth.authorization.slice('Bearer '.length));
    const ready = Date.now();
    assert.is(health.status, 'ok', JSON.stringify(health.body));
    const res = await fetch(`http://127.0.0.1:${http}/api/v1/images`, { method: 'POST', headers: { 'content-type': 'image/jpeg', ...auth }, body: photoBytes('excavator/' + fs.readdirSync(path.join(process.env.TU_TESTDATA_DIR ?? path.resolve(import.meta.dirname, '../../shared/testdata/images'), 'excavator')).sort()[0]) });
    assert.is(res.status, 202);
    const { analysisId } = (await res.json()) as { analysisId: string };
    let status = '';
    let body: { status: string; results?: { recognition?: { machineType: string } } } = { status: '' };
    const deadline = Date.now() + 300_000;
    while (!['completed', 'failed'].includes(status)) {
      if (Date.now() > deadline) throw new Error(`analysis did not end under emulation: ${agent.output().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 500));
      body = (await (await fetch(`http://127.0.0.1:${http}/api/v1/analyses/${analysisId}`, { headers: auth })).json()) as typeof body;
      status = body.status;
    }
    assert.is(status, 'completed', JSON.stringify(body).slice(0, 2000));
    console.log(`  release arm64 (qemu): artifact ${((built - t0) / 1000).toFixed(0)} s, healthy after ${((ready - built) / 1000).toFixed(0)} s, analysis ${((Date.now() - ready) / 1000).toFixed(0)} s, recognised ${body.results?.recognition?.machineType ?? '?'}`);
  } finally {
    await stopChild(agent);
  }
});

test.run();
