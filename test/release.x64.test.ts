/**
 * The gateway release artifact on linux-x64 (issue: release): built by `npm run package`'s
 * script, unpacked outside the repo, run with `env -i` on its own Node runtime. A real
 * photo reaches analysis.completed with a recognised type; install, provision, update to
 * a second build, automatic roll-back from a broken one, manual rollback; data from a
 * newer agent refused.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BusClient, silentLogger, type AnyEvent } from '@tu/shared';
import { derivePassword, observerUsername } from '@tu/agent';
import { listLabelledImages } from '@tu/agent/internal/services/vision/dataset';
import { technicianPublicKeyPem, technicianToken } from '@tu/relay/internal/cli/technicians';
import { IMAGES_DIR, photoBytes } from './support/data.js';
import { until } from './support/harness.js';
import { freePort } from './support/processes.js';
import { artifact, artifactToken, envI, freshHome, runToEnd, startDetached, stopChild, unpack, waitHealth } from './support/release.js';

const V1 = '0.1.0-rel.1';
const V2 = '0.1.0-rel.2';
const GW = 'gw-release';
const FORKLIFT = 'forklift/' + fs.readdirSync(path.join(process.env.TU_TESTDATA_DIR ?? path.resolve(import.meta.dirname, '../../shared/testdata/images'), 'forklift')).sort()[0];

test('the artifact holds one tu-agent/ folder with runtime, natives for its arch, model, unit and licences, and no dev tooling', () => {
  const app = unpack(artifact(V1));
  for (const f of ['bin/tu-agent', 'runtime/bin/node', 'lib/main.js', 'lib/worker.js', 'lib/refit-worker.js', 'lib/store-worker.js', 'lib/outbox-worker.js', 'lib/journal-worker.js', 'lib/writer-thread-worker.js', 'systemd/tu-agent.service', 'release.json', 'LICENSE', 'NOTICE', 'README.md', 'ui/index.html', 'profiles/field-gateway.json']) {
    assert.ok(fs.existsSync(path.join(app, f)), `${f} shipped`);
  }
  const release = JSON.parse(fs.readFileSync(path.join(app, 'release.json'), 'utf8')) as { version: string; arch: string; model: { id: string } };
  assert.is(release.version, V1);
  assert.is(release.arch, 'x64');
  assert.ok(fs.readdirSync(path.join(app, 'models', release.model.id)).length > 0, 'model shipped');
  const modules = fs.readdirSync(path.join(app, 'node_modules'));
  for (const dev of ['tsx', 'typescript', 'vite', 'esbuild', 'uvu', 'eslint', 'playwright-core']) assert.not.ok(modules.includes(dev), `${dev} not shipped`);
  const ortBins = fs.readdirSync(path.join(app, 'node_modules/onnxruntime-node/bin/napi-v6/linux'));
  assert.equal(ortBins, ['x64'], 'only the x64 onnxruntime binary');
  assert.ok(fs.existsSync(path.join(app, 'node_modules/@img/sharp-linux-x64')) && !fs.existsSync(path.join(app, 'node_modules/@img/sharp-linux-arm64')));
  const unit = path.join(app, 'systemd/tu-agent.service');
  const verify = runToEnd(['systemd-analyze', 'verify', unit]);
  // The only complaint allowed is the ExecStart path, which exists once installed.
  const complaints = verify.out.split('\n').filter((l) => l.trim() && !l.includes('/opt/tu-agent/current/bin/tu-agent'));
  assert.equal(complaints, [], `systemd-analyze verify: ${verify.out}`);
});

test('env -i: version prints agent, runtime and model; run serves a real photo to analysis.completed with a recognised type; SIGTERM stops cleanly', async () => {
  const app = unpack(artifact(V1));
  const data = path.join(freshHome(), 'data');
  const version = runToEnd(envI({ TU_GATEWAY_ID: GW, TU_DATA_DIR: data }, [path.join(app, 'bin/tu-agent'), 'version']));
  assert.is(version.code, 0, version.out);
  assert.match(version.out, `tu-agent ${V1} (commit `);
  assert.match(version.out, 'node v20.');
  assert.match(version.out, /model \S+ sha256-[0-9a-f]{12}/);

  const [http, bus] = [await freePort(), await freePort()];
  // The installer's way in (issue 12): `tu-agent token` with the same two variables, before the first start.
  const token = artifactToken([path.join(app, 'bin/tu-agent')], { TU_GATEWAY_ID: GW, TU_DATA_DIR: data });
  const auth = { authorization: `Bearer ${token}` };
  const t0 = Date.now();
  const agent = startDetached(envI({ TU_GATEWAY_ID: GW, TU_DATA_DIR: data, TU_HTTP_PORT: String(http), TU_MQTT_PORT: String(bus) }, [path.join(app, 'bin/tu-agent'), 'run']));
  try {
    const health = await waitHealth(http, 60_000, agent, token);
    console.log(`  release x64: healthy ${Date.now() - t0} ms after exec`);
    assert.is(health.version, V1);
    assert.is(health.status, 'ok', JSON.stringify(health.body));
    // Each service instance announces the release it runs (agent/src/bus.ts); it was always '0.1.0'.
    const instances = Object.values(health.body.services as Record<string, { instances: { version: string }[] }>).flatMap((s) => s.instances);
    assert.ok(instances.length > 0 && instances.every((i) => i.version === V1), JSON.stringify(instances));
    // An observer on the agent's bus (its secret is in the data dir: proof of being on the device).
    const secret = fs.readFileSync(path.join(data, 'bus-secret'), 'utf8').trim();
    const events: AnyEvent[] = [];
    const obs = await BusClient.connect({
      gatewayId: GW,
      service: 'intake',
      instanceId: observerUsername('release-test'),
      username: observerUsername('release-test'),
      password: derivePassword(secret, observerUsername('release-test')),
      transport: { kind: 'tcp', host: '127.0.0.1', port: bus },
      logger: silentLogger(),
    });
    await obs.onEvents('all', (e) => void events.push(e));
    const stranger = await fetch(`http://127.0.0.1:${http}/api/v1/images`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photoBytes(FORKLIFT) });
    assert.is(stranger.status, 401, 'no token, no upload');
    await stranger.body?.cancel();
    const res = await fetch(`http://127.0.0.1:${http}/api/v1/images`, { method: 'POST', headers: { 'content-type': 'image/jpeg', ...auth }, body: photoBytes(FORKLIFT) });
    assert.is(res.status, 202);
    const { analysisId } = (await res.json()) as { analysisId: string };
    await until(() => events.some((e) => e.subject === analysisId && e.type === 'analysis.completed'), 60_000, 'analysis.completed');
    // The results went out in the step events; the analysis view holds them all (docs/messages.md).
    const view = (await (await fetch(`http://127.0.0.1:${http}/api/v1/analyses/${analysisId}`, { headers: auth })).json()) as { results: { recognition?: { machineType: string } } };
    const recognition = view.results.recognition;
    assert.ok(recognition, 'recognition result of the completed analysis');
    assert.ok(events.some((e) => e.subject === analysisId && e.type === 'recognition.completed'), 'recognition.completed on the bus');
    assert.is.not(recognition!.machineType, 'unknown', 'a machine type was recognised');
    console.log(`  release x64: ${FORKLIFT} recognised as ${recognition!.machineType}`);
    // A technician's label refits the head in a thread of its own (agent/src/services/vision/refit-thread.ts): the bundle's lib/refit-worker.js.
    const label = await fetch(`http://127.0.0.1:${http}/api/v1/analyses/${analysisId}/label`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ label: 'telehandler', by: 'tech-1' }) });
    assert.is(label.status, 201, await label.text());
    let refit: { used?: number; headId?: string } | undefined;
    for (let i = 0; i < 300 && !refit; i++) {
      const h = (await (await fetch(`http://127.0.0.1:${http}/api/v1/health`, { headers: auth })).json()) as { model?: { refit?: { used: number; headId: string } | null } };
      refit = h.model?.refit ?? undefined;
      if (!refit) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(refit, `the head was refitted to the label: ${agent.output().slice(-2000)}`);
    assert.is(refit!.used, 1);
    assert.match(refit!.headId ?? '', '+device-');
    await obs.close();
  } finally {
    const code = await stopChild(agent);
    assert.is(code, 0, `clean exit on SIGTERM: ${agent.output().slice(-2000)}`);
  }
  const stamp = JSON.parse(fs.readFileSync(path.join(data, 'data-format.json'), 'utf8')) as { format: number };
  assert.is(stamp.format, 1);
  // Data from a newer agent: refused with a clear message and exit 2 (no restart loop under systemd).
  fs.writeFileSync(path.join(data, 'data-format.json'), JSON.stringify({ format: 99, writtenBy: '9.0.0' }));
  const refused = runToEnd(envI({ TU_GATEWAY_ID: GW, TU_DATA_DIR: data, TU_HTTP_PORT: String(http), TU_MQTT_PORT: String(bus) }, [path.join(app, 'bin/tu-agent'), 'run']));
  assert.is(refused.code, 2, refused.out);
  assert.match(refused.out, 'DATA_FORMAT_TOO_NEW');
  assert.match(refused.out, 'holds data format 99, written by agent 9.0.0');
});

// The agent runs without --enable-source-maps (agent/systemd/tu-agent.launcher.sh): its log
// lines name bundle positions, and `tu-agent stack` maps them offline (agent/src/cli/stack.ts).
test('tu-agent stack maps a journal line\'s frames from the bundle to the source file and line, leaving other frames and the JSON intact', () => {
  const app = unpack(artifact(V1));
  // Where `logsHints` (agent/src/cli/logs.ts, line 2) landed in the shipped bundle.
  const bundle = fs.readFileSync(path.join(app, 'lib/main.js'), 'utf8');
  const at = bundle.indexOf('function logsHints(');
  assert.ok(at > 0, 'logsHints is in the bundle');
  const line = bundle.slice(0, at).split('\n').length;
  const column = at - bundle.lastIndexOf('\n', at - 1);
  const stack = `Error: boom\n    at logsHints (file://${fs.realpathSync(app)}/lib/main.js:${line}:${column})\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)\n    at f (/usr/lib/other/lib/thing.js:1:2)`;
  const journal = path.join(freshHome(), 'journal.txt');
  fs.writeFileSync(journal, `${JSON.stringify({ level: 50, msg: 'failed', err: { stack } })}\n`);
  const mapped = runToEnd(envI({}, [path.join(app, 'bin/tu-agent'), 'stack', journal]));
  assert.is(mapped.code, 0, mapped.out);
  const err = (JSON.parse(mapped.out) as { err: { stack: string } }).err.stack.split('\n');
  assert.match(err[1]!, /^ {4}at logsHints \(agent\/src\/cli\/logs\.ts:2:\d+\)$/);
  assert.is(err[2], '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)');
  assert.is(err[3], '    at f (/usr/lib/other/lib/thing.js:1:2)');
  const exec = fs.readFileSync(path.join(app, 'bin/tu-agent'), 'utf8').split('\n').find((l) => l.startsWith('exec '));
  assert.ok(exec?.includes('lib/main.js') && !exec.includes('--enable-source-maps'), `the launcher runs the bundle without source maps: ${exec}`);
});

// The launcher's memory settings (agent/systemd/tu-agent.launcher.sh): without
// --optimize-for-size the main isolate kept the garbage of every photo and RSS grew by
// ~100 MB over 100 photos (280 MB); with it ~20 MB (docs/release.md "Where the memory goes").
test('memory: 100 real photos analysed one after another keep RSS within the budget for 500 (≤ 250 MB), growing ≤ 50 MB', async () => {
  const app = unpack(artifact(V1));
  const data = path.join(freshHome(), 'data');
  const photos = (await listLabelledImages(IMAGES_DIR)).map((p) => fs.readFileSync(p.file));
  const [http, bus] = [await freePort(), await freePort()];
  const auth = { authorization: `Bearer ${artifactToken([path.join(app, 'bin/tu-agent')], { TU_GATEWAY_ID: GW, TU_DATA_DIR: data })}` };
  const agent = startDetached(envI({ TU_GATEWAY_ID: GW, TU_DATA_DIR: data, TU_HTTP_PORT: String(http), TU_MQTT_PORT: String(bus) }, [path.join(app, 'bin/tu-agent'), 'run']));
  const rssMB = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${agent.pid}/status`, 'utf8'))?.[1]) / 1024;
  try {
    await waitHealth(http, 60_000, agent);
    await new Promise((r) => setTimeout(r, 1500));
    const idle = rssMB();
    const failed: string[] = [];
    for (let i = 0; i < 100; i++) {
      const res = await fetch(`http://127.0.0.1:${http}/api/v1/images`, { method: 'POST', headers: { 'content-type': 'image/jpeg', ...auth }, body: photos[i % photos.length]! });
      assert.is(res.status, 202);
      const { analysisId } = (await res.json()) as { analysisId: string };
      for (;;) {
        const st = ((await (await fetch(`http://127.0.0.1:${http}/api/v1/analyses/${analysisId}`, { headers: auth })).json()) as { status: string }).status;
        if (st === 'failed') failed.push(analysisId);
        if (st === 'completed' || st === 'failed') break;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    const after = rssMB();
    console.log(`  release x64: RSS idle ${idle.toFixed(0)} MB, after 100 photos ${after.toFixed(0)} MB`);
    assert.equal(failed, [], 'every photo analysed');
    assert.ok(after <= 250, `RSS after 100 photos ${after.toFixed(0)} MB > 250 MB`);
    assert.ok(after - idle <= 50, `RSS grew ${(after - idle).toFixed(0)} MB over 100 photos (idle ${idle.toFixed(0)} MB)`);
  } finally {
    await stopChild(agent);
  }
});

test('install, provision, update to a second build, automatic roll-back from a broken build, manual rollback', async () => {
  const root = freshHome();
  const app1 = unpack(artifact(V1));
  const tu = (bin: string, ...args: string[]) => runToEnd(envI({}, [bin, ...args, '--root', root]));
  // Commands that read a config take no --root (it is refused: agent/src/cli/args.ts); they name the file.
  const tuConfig = (bin: string, ...args: string[]) => runToEnd(envI({}, [bin, ...args]));
  const inst = tu(path.join(app1, 'bin/tu-agent'), 'install', '--no-system');
  assert.is(inst.code, 0, inst.out);
  const opt = path.join(root, 'opt/tu-agent');
  assert.is(fs.readlinkSync(path.join(opt, 'current')), V1, 'relative: an image built with --root works wherever it is copied');
  assert.ok(fs.existsSync(path.join(root, 'etc/systemd/system/tu-agent.service')));
  assert.ok(fs.existsSync(path.join(root, 'var/lib/tu-agent')));
  assert.is(tu(path.join(app1, 'bin/tu-agent'), 'install', '--no-system').code, 0, 'install again is harmless');

  // Point the installed config at the test's folder and ports (a gateway keeps /var/lib/tu-agent, 8080).
  const configFile = path.join(root, 'etc/tu-agent/config.json');
  const [http, bus] = [await freePort(), await freePort()];
  const cfg = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(configFile, JSON.stringify({ ...cfg, dataDir: path.join(root, 'var/lib/tu-agent'), http: { host: '127.0.0.1', port: http }, broker: { host: '127.0.0.1', port: bus } }));
  const secretFile = path.join(root, 'secret.txt');
  fs.writeFileSync(secretFile, 'a-gateway-secret-from-the-relay-0001\n');
  // The relay's technician key (npm run relay -- technicians key), provisioned with the gateway.
  const relayKeys = freshHome();
  const relayKeyFile = path.join(root, 'relay-technician-key.pem');
  fs.writeFileSync(relayKeyFile, technicianPublicKeyPem(relayKeys) + '\n');
  const prov = tu(path.join(opt, 'current/bin/tu-agent'), 'provision', '--gateway-id', 'gw-installed', '--relay', 'mqtts://relay.example:8883', '--secret-file', secretFile, '--technician-key', relayKeyFile);
  assert.is(prov.code, 0, prov.out);
  assert.is(fs.readFileSync(path.join(root, 'etc/tu-agent/relay-technician-key.pem'), 'utf8'), fs.readFileSync(relayKeyFile, 'utf8'));
  assert.is((JSON.parse(fs.readFileSync(configFile, 'utf8')) as { auth: { relayPublicKeyFile: string } }).auth.relayPublicKeyFile, '/etc/tu-agent/relay-technician-key.pem');
  const provisioned = JSON.parse(fs.readFileSync(configFile, 'utf8')) as { gatewayId: string; uplink: { url: string; passwordFile: string } };
  assert.is(provisioned.gatewayId, 'gw-installed');
  assert.is(provisioned.uplink.url, 'mqtts://relay.example:8883');
  assert.is(fs.readFileSync(path.join(root, 'etc/tu-agent/uplink-secret'), 'utf8').trim(), 'a-gateway-secret-from-the-relay-0001');
  assert.not.match(fs.readFileSync(configFile, 'utf8'), 'a-gateway-secret', 'the config names the secret file, never the secret');
  const badProv = tu(path.join(opt, 'current/bin/tu-agent'), 'provision', '--gateway-id', 'bad id!', '--relay', 'mqtts://x:1', '--secret-file', secretFile);
  assert.is(badProv.code, 2, badProv.out);
  assert.match(badProv.out, 'gatewayId');
  // No relay in this test: drop the uplink again so health is about the agent alone.
  // The key file as installed under --root (the config names its path on a gateway).
  fs.writeFileSync(configFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(configFile, 'utf8')), uplink: undefined, auth: { relayPublicKeyFile: path.join(root, 'etc/tu-agent/relay-technician-key.pem') } }));
  const valid = tuConfig(path.join(opt, 'current/bin/tu-agent'), 'config', 'validate', configFile);
  assert.is(valid.code, 0, valid.out);

  // The test plays systemd: the restart command stops the running agent and starts `current`.
  const pidFile = path.join(root, 'agent.pid');
  const restart = path.join(root, 'restart.sh');
  fs.writeFileSync(
    restart,
    `#!/bin/sh\n[ -f ${pidFile} ] && kill $(cat ${pidFile}) 2>/dev/null && while kill -0 $(cat ${pidFile}) 2>/dev/null; do sleep 0.1; done\n` +
      `env -i HOME=${root} setsid ${opt}/current/bin/tu-agent run --config ${configFile} >>${root}/agent.log 2>&1 < /dev/null &\necho $! > ${pidFile}\n`,
  );
  execFileSync('sh', [restart]);
  try {
    assert.is((await waitHealth(http, 60_000)).version, V1);
    const update = (tarball: string, timeoutS: number) => tu(path.join(opt, 'current/bin/tu-agent'), 'update', tarball, '--restart-command', `sh ${restart}`, '--timeout-s', String(timeoutS));
    const up = update(artifact(V2), 40);
    assert.is(up.code, 0, up.out);
    assert.is((await waitHealth(http, 5000)).version, V2);
    assert.is(fs.readlinkSync(path.join(opt, 'current')), V2);
    assert.is(fs.readlinkSync(path.join(opt, 'previous')), V1);
    const status = tuConfig(path.join(opt, 'current/bin/tu-agent'), 'status', '--config', configFile);
    assert.is(status.code, 0, status.out);
    assert.match(status.out, `version ${V2}`);
    assert.match(status.out, 'bus: up', 'status reads the device key: the details');
    // A technician with a token from the relay gets in, offline.
    const alice = await technicianToken(relayKeys, { gateway: 'gw-installed', role: 'view', name: 'alice', ttl: '1h' }, async () => true);
    const [withToken, without] = [await fetch(`http://127.0.0.1:${http}/api/v1/analyses`, { headers: { authorization: `Bearer ${alice}` } }), await fetch(`http://127.0.0.1:${http}/api/v1/analyses`)];
    assert.is(withToken.status, 200, await withToken.text());
    assert.is(without.status, 401, await without.text());

    // A deliberately broken build: V2 with a main.js that dies at start.
    const broken = unpack(artifact(V2));
    fs.writeFileSync(path.join(broken, 'lib/main.js'), 'throw new Error("deliberately broken build");\n');
    const rel = JSON.parse(fs.readFileSync(path.join(broken, 'release.json'), 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(path.join(broken, 'release.json'), JSON.stringify({ ...rel, version: '0.1.0-rel.broken' }));
    const brokenTar = path.join(freshHome(), 'broken.tar.gz');
    execFileSync('tar', ['-czf', brokenTar, '-C', path.dirname(broken), 'tu-agent']);
    const bad = update(brokenTar, 10);
    assert.is(bad.code, 1, bad.out);
    assert.match(bad.out, 'UPDATE_UNHEALTHY');
    assert.match(bad.out, `rolled back to ${V2}: healthy`);
    assert.is((await waitHealth(http, 5000)).version, V2);
    assert.is(fs.readlinkSync(path.join(opt, 'current')), V2);
    assert.not.ok(fs.existsSync(path.join(opt, '0.1.0-rel.broken')), 'the broken version is removed');

    const back = tu(path.join(opt, 'current/bin/tu-agent'), 'rollback', '--restart-command', `sh ${restart}`, '--timeout-s', '40');
    assert.is(back.code, 0, back.out);
    assert.is((await waitHealth(http, 5000)).version, V1);
  } finally {
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const un = tu(path.join(opt, 'current/bin/tu-agent'), 'uninstall', '--no-system');
  assert.is(un.code, 0, un.out);
  assert.not.ok(fs.existsSync(opt));
  assert.ok(fs.existsSync(configFile), 'config kept without --purge');
});

test.run();
