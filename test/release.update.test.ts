/**
 * Giving a gateway the software and updating it, with the x64 artifact (scripts/release/package.ts)
 * installed under --root and run with `env -i`: an image built with --root still starts once
 * copied elsewhere; `update` installs the new version's unit; an update cut short (kill -9, as a
 * power cut or a dropped ssh session ends it) is undone at the next start by the unit's
 * ExecStartPre; what a cut-short unpack left on flash is removed by the next update.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO_ROOT } from './support/data.js';
import { mountTmpfs, unmount } from './support/disk.js';
import { until } from './support/harness.js';
import { freePort } from './support/processes.js';
import { artifact, envI, freshHome, runToEnd, unpack, waitHealth } from './support/release.js';

const V1 = '0.1.0-upd.1';
const V2 = '0.1.0-upd.2';

/** V2 rebuilt as `version` with `change` applied to the unpacked folder (a broken build, a changed unit). */
function variant(version: string, change: (app: string) => void): string {
  const app = unpack(artifact(V2));
  change(app);
  const file = path.join(app, 'release.json');
  fs.writeFileSync(file, JSON.stringify({ ...(JSON.parse(fs.readFileSync(file, 'utf8')) as object), version }));
  const tarball = path.join(freshHome(), `tu-agent-${version}.tar.gz`);
  execFileSync('tar', ['-czf', tarball, '-C', path.dirname(app), 'tu-agent']);
  return tarball;
}

interface Gateway {
  root: string;
  opt: string;
  http: number;
  /** The restart command given to update: plays systemd (stop, the unit's ExecStartPre, ExecStart). */
  restart: string;
  tu: (...args: string[]) => { code: number; out: string };
  stop: () => void;
}

/**
 * V1 installed under a fresh --root, configured for free ports, started. The restart script runs
 * the installed unit's own ExecStartPre with /opt/tu-agent under the root, so the test starts the
 * agent the way systemd would.
 */
async function installedGateway(): Promise<Gateway> {
  const root = freshHome();
  const opt = path.join(root, 'opt/tu-agent');
  const inst = runToEnd(envI({}, [path.join(unpack(artifact(V1)), 'bin/tu-agent'), 'install', '--no-system', '--root', root]));
  assert.is(inst.code, 0, inst.out);
  const configFile = path.join(root, 'etc/tu-agent/config.json');
  const [http, bus] = [await freePort(), await freePort()];
  const cfg = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(configFile, JSON.stringify({ ...cfg, gatewayId: 'gw-update', dataDir: path.join(root, 'var/lib/tu-agent'), http: { host: '127.0.0.1', port: http }, broker: { host: '127.0.0.1', port: bus } }));
  const pidFile = path.join(root, 'agent.pid');
  const restart = path.join(root, 'restart.sh');
  const unit = path.join(root, 'etc/systemd/system/tu-agent.service');
  fs.writeFileSync(
    restart,
    `#!/bin/sh\n[ -f ${pidFile} ] && kill $(cat ${pidFile}) 2>/dev/null && while kill -0 $(cat ${pidFile}) 2>/dev/null; do sleep 0.1; done\n` +
      // ExecStartPre lines of the installed unit, without systemd's prefixes, on the test's root.
      `grep '^ExecStartPre=' ${unit} | sed -e 's/^ExecStartPre=[-+@:!]*//' -e 's#/opt/tu-agent#${opt}#g' -e 's#tu-agent recover#tu-agent recover --root ${root}#g' > ${root}/pre.sh\n` +
      `env -i HOME=${root} sh ${root}/pre.sh >>${root}/pre.log 2>&1\n` +
      `env -i HOME=${root} setsid ${opt}/current/bin/tu-agent run --config ${configFile} >>${root}/agent.log 2>&1 < /dev/null &\necho $! > ${pidFile}\n`,
  );
  execFileSync('sh', [restart]);
  assert.is((await waitHealth(http, 60_000)).version, V1);
  return {
    root,
    opt,
    http,
    restart,
    tu: (...args) => runToEnd(envI({}, [path.join(opt, 'current/bin/tu-agent'), ...args, '--root', root])),
    stop: () => {
      try {
        process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGTERM');
      } catch {
        // already gone
      }
    },
  };
}

test('an image built with install --root starts from wherever the image is copied: the version links are relative', () => {
  const image = freshHome();
  const inst = runToEnd(envI({}, [path.join(unpack(artifact(V1)), 'bin/tu-agent'), 'install', '--no-system', '--root', image]));
  assert.is(inst.code, 0, inst.out);
  // The image lands elsewhere (the gateway's /): the build folder no longer exists.
  const copied = `${image}-on-the-gateway`;
  fs.renameSync(image, copied);
  const version = runToEnd(envI({}, [path.join(copied, 'opt/tu-agent/current/bin/tu-agent'), 'version']));
  assert.is(version.code, 0, `the unit's ExecStart resolves in the copied image: ${version.out}`);
  assert.match(version.out, `tu-agent ${V1}`);
  assert.is(fs.readlinkSync(path.join(copied, 'opt/tu-agent/current')), V1);
});

test('update installs the unit of the version it switches to, and a failed update puts the old unit back', async () => {
  const gw = await installedGateway();
  const unit = path.join(gw.root, 'etc/systemd/system/tu-agent.service');
  try {
    const v1Unit = fs.readFileSync(unit, 'utf8');
    const changed = variant('0.1.0-upd.unit', (app) => {
      const f = path.join(app, 'systemd/tu-agent.service');
      fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace(/^MemoryMax=.*$/m, 'MemoryMax=600M'));
    });
    const up = gw.tu('update', changed, '--restart-command', `sh ${gw.restart}`, '--timeout-s', '60');
    assert.is(up.code, 0, up.out);
    assert.match(fs.readFileSync(unit, 'utf8'), /^MemoryMax=600M$/m, 'the new version\'s unit is installed');

    const broken = variant('0.1.0-upd.broken', (app) => {
      fs.writeFileSync(path.join(app, 'lib/main.js'), 'throw new Error("deliberately broken build");\n');
      const f = path.join(app, 'systemd/tu-agent.service');
      fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace(/^MemoryMax=.*$/m, 'MemoryMax=700M'));
    });
    const bad = gw.tu('update', broken, '--restart-command', `sh ${gw.restart}`, '--timeout-s', '8');
    assert.is(bad.code, 1, bad.out);
    assert.match(fs.readFileSync(unit, 'utf8'), /^MemoryMax=600M$/m, 'rolled back with its own unit');
    const back = gw.tu('rollback', '--restart-command', `sh ${gw.restart}`, '--timeout-s', '60');
    assert.is(back.code, 0, back.out);
    assert.is(fs.readFileSync(unit, 'utf8'), v1Unit, 'rollback returns to the unit of the version it returns to');
  } finally {
    gw.stop();
  }
});

test('an update killed while it waits for a broken version is undone at the next start: the old version runs again', async () => {
  const gw = await installedGateway();
  try {
    const broken = variant('0.1.0-upd.broken', (app) => fs.writeFileSync(path.join(app, 'lib/main.js'), 'throw new Error("deliberately broken build");\n'));
    const updater = spawn('env', ['-i', path.join(gw.opt, 'current/bin/tu-agent'), 'update', broken, '--root', gw.root, '--restart-command', `sh ${gw.restart}`, '--timeout-s', '120'], { stdio: 'ignore' });
    // The moment a power cut or a dropped ssh session hurts most: `current` switched, health not seen.
    // Its restart is over once the broken version has died: the updater now only waits for health.
    const log = path.join(gw.root, 'agent.log');
    await until(() => fs.readFileSync(log, 'utf8').includes('deliberately broken build'), 60_000, 'the broken version started and died');
    assert.ok(fs.readlinkSync(path.join(gw.opt, 'current')).endsWith('0.1.0-upd.broken'), 'current names the version not seen healthy');
    updater.kill('SIGKILL');
    await new Promise((r) => updater.once('exit', r));
    // The next start (a boot, or systemd restarting the failed service) goes through ExecStartPre.
    execFileSync('sh', [gw.restart]);
    const health = await waitHealth(gw.http, 60_000);
    assert.is(health.version, V1, fs.readFileSync(path.join(gw.root, 'pre.log'), 'utf8'));
    assert.is(fs.readlinkSync(path.join(gw.opt, 'current')), V1);
    assert.not.ok(fs.existsSync(path.join(gw.opt, 'update-pending')), 'the record is gone once the old version is back');
    assert.not.ok(fs.existsSync(path.join(gw.opt, '0.1.0-upd.broken')), 'the unverified version is removed');
    assert.match(fs.readFileSync(path.join(gw.root, 'pre.log'), 'utf8'), `back to ${V1}`);
    // And the gateway can be updated again as usual.
    const up = gw.tu('update', artifact(V2), '--restart-command', `sh ${gw.restart}`, '--timeout-s', '60');
    assert.is(up.code, 0, up.out);
    assert.is((await waitHealth(gw.http, 5000)).version, V2);
  } finally {
    gw.stop();
  }
});

test('an update cut short after the new version answered healthy is completed at the next start, not reverted', async () => {
  const gw = await installedGateway();
  try {
    // The updater's own code (agent/src/cli/update.ts) killed with SIGKILL right when it reports the
    // new version healthy: after the health check said OK, before its record is removed.
    const updater = `const { updateCommand } = await import('@tu/agent/internal/cli/update');
      const [tarball, root, restartCommand] = process.argv.slice(1);
      await updateCommand(tarball, { root, restartCommand, timeoutMs: 60000, out: (line) => {
        console.log(line);
        if (/^updated to .*: healthy$/.test(line)) process.kill(process.pid, 'SIGKILL');
      } });`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', updater, artifact(V2), gw.root, `sh ${gw.restart}`], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 90_000 });
    assert.is(r.signal, 'SIGKILL', `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, `updated to ${V2}: healthy`);
    assert.ok(fs.existsSync(path.join(gw.opt, 'update-pending')), 'killed before its record was removed');
    // The next start (a power cut, a crash) goes through the unit's ExecStartPre.
    execFileSync('sh', [gw.restart]);
    const pre = () => fs.readFileSync(path.join(gw.root, 'pre.log'), 'utf8');
    assert.is((await waitHealth(gw.http, 60_000)).version, V2, pre());
    assert.is(fs.readlinkSync(path.join(gw.opt, 'current')), V2, pre());
    assert.is(fs.readlinkSync(path.join(gw.opt, 'previous')), V1);
    assert.not.ok(fs.existsSync(path.join(gw.opt, 'update-pending')), 'the update is complete');
    assert.match(pre(), `kept ${V2}`);
    // And it is a complete update: rollback returns to the version it came from.
    const back = gw.tu('rollback', '--restart-command', `sh ${gw.restart}`, '--timeout-s', '60');
    assert.is(back.code, 0, back.out);
    assert.is((await waitHealth(gw.http, 5000)).version, V1);
  } finally {
    gw.stop();
  }
});

test('a new version that answers but is degraded where the old one was ok is rolled back, with its reasons', async () => {
  const gw = await installedGateway();
  try {
    // The new version's shipped model damaged: it starts and answers 200, yet recognises no photo.
    const damaged = variant('0.1.0-upd.nomodel', (app) => {
      const model = fs.readdirSync(path.join(app, 'models'))[0]!;
      fs.writeFileSync(path.join(app, 'models', model, 'model.onnx'), 'not a model');
    });
    const r = gw.tu('update', damaged, '--restart-command', `sh ${gw.restart}`, '--timeout-s', '8');
    assert.is(r.code, 1, r.out);
    assert.match(r.out, 'version 0.1.0-upd.nomodel answers but is degraded: photos are not recognised');
    assert.match(r.out, `rolled back to ${V1}: healthy`);
    const health = await waitHealth(gw.http, 5000);
    assert.equal([health.version, health.status], [V1, 'ok']);
    assert.equal(fs.readdirSync(gw.opt).sort(), [V1, 'current'].sort());
  } finally {
    gw.stop();
  }
});

test('a failed update to the version `previous` named leaves no `previous` naming a removed folder', async () => {
  const gw = await installedGateway();
  const previous = path.join(gw.opt, 'previous');
  try {
    const up = gw.tu('update', artifact(V2), '--restart-command', `sh ${gw.restart}`, '--timeout-s', '60');
    assert.is(up.code, 0, up.out);
    const back = gw.tu('rollback', '--restart-command', `sh ${gw.restart}`, '--timeout-s', '60');
    assert.is(back.code, 0, back.out);
    assert.is(fs.readlinkSync(previous), V2);
    // V2 again, as a build that does not start: it replaces the folder `previous` names, and fails.
    const broken = variant(V2, (app) => fs.writeFileSync(path.join(app, 'lib/main.js'), 'throw new Error("deliberately broken build");\n'));
    const bad = gw.tu('update', broken, '--restart-command', `sh ${gw.restart}`, '--timeout-s', '8');
    assert.is(bad.code, 1, bad.out);
    assert.is((await waitHealth(gw.http, 5000)).version, V1);
    const named = fs.lstatSync(previous, { throwIfNoEntry: false }) ? fs.readlinkSync(previous) : null;
    assert.ok(named === null || fs.existsSync(path.join(gw.opt, named, 'release.json')), `previous names ${named}, which is gone`);
    const again = gw.tu('rollback', '--restart-command', `sh ${gw.restart}`, '--timeout-s', '8');
    assert.is(again.code, 1, again.out);
    assert.match(again.out, 'there is no previous version to roll back to');
  } finally {
    gw.stop();
  }
});

test('a rollback to a previous version that no longer starts returns to the version it left, also when cut short', async () => {
  const gw = await installedGateway();
  try {
    const up = gw.tu('update', artifact(V2), '--restart-command', `sh ${gw.restart}`, '--timeout-s', '60');
    assert.is(up.code, 0, up.out);
    // V1's files damaged on flash since (any reason it no longer starts: data it cannot read, …).
    fs.writeFileSync(path.join(gw.opt, V1, 'lib/main.js'), 'throw new Error("previous version damaged");\n');
    const back = gw.tu('rollback', '--restart-command', `sh ${gw.restart}`, '--timeout-s', '8');
    assert.is(back.code, 1, back.out);
    assert.is((await waitHealth(gw.http, 5000)).version, V2, 'the gateway is up on the version it was on');
    assert.match(back.out, `UPDATE_UNHEALTHY: rollback to ${V1} failed`);
    assert.match(back.out, `back on ${V2}: healthy`);
    assert.is(fs.readlinkSync(path.join(gw.opt, 'current')), V2);
    assert.is(fs.readlinkSync(path.join(gw.opt, 'previous')), V1);
    assert.not.ok(fs.existsSync(path.join(gw.opt, 'update-pending')));

    // The same rollback cut short (kill -9) while it waits for V1: the next start is on V2 again.
    const log = path.join(gw.root, 'agent.log');
    const deaths = () => fs.readFileSync(log, 'utf8').split('previous version damaged').length;
    const before = deaths();
    const rollback = spawn('env', ['-i', path.join(gw.opt, 'current/bin/tu-agent'), 'rollback', '--root', gw.root, '--restart-command', `sh ${gw.restart}`, '--timeout-s', '120'], { stdio: 'ignore' });
    await until(() => deaths() > before, 60_000, 'the damaged version started and died');
    assert.is(fs.readlinkSync(path.join(gw.opt, 'current')), V1);
    rollback.kill('SIGKILL');
    await new Promise((r) => rollback.once('exit', r));
    execFileSync('sh', [gw.restart]);
    assert.is((await waitHealth(gw.http, 60_000)).version, V2, fs.readFileSync(path.join(gw.root, 'pre.log'), 'utf8'));
    assert.is(fs.readlinkSync(path.join(gw.opt, 'current')), V2);
    assert.is(fs.readlinkSync(path.join(gw.opt, 'previous')), V1);
    assert.not.ok(fs.existsSync(path.join(gw.opt, 'update-pending')));
  } finally {
    gw.stop();
  }
});

test('a rollback after an update cut short returns to the version the update came from, and restarts it', async () => {
  const gw = await installedGateway();
  try {
    // The update killed (its whole group, as a dropped ssh session ends it) once V2 runs, before
    // it has seen V2's health: its restart command keeps it from looking.
    const updater = spawn('env', ['-i', path.join(gw.opt, 'current/bin/tu-agent'), 'update', artifact(V2), '--root', gw.root, '--restart-command', `sh ${gw.restart}; sleep 60`, '--timeout-s', '60'], { stdio: 'ignore', detached: true });
    for (const deadline = Date.now() + 60_000; (await waitHealth(gw.http, 60_000)).version !== V2; await new Promise((r) => setTimeout(r, 200))) {
      if (Date.now() > deadline) throw new Error('V2 did not start');
    }
    process.kill(-updater.pid!, 'SIGKILL');
    await new Promise((r) => updater.once('exit', r));
    assert.ok(fs.existsSync(path.join(gw.opt, 'update-pending')));
    // The operator asks for the version before, without a restart in between.
    const back = gw.tu('rollback', '--restart-command', `sh ${gw.restart}`, '--timeout-s', '60');
    assert.is(back.code, 0, back.out);
    assert.is((await waitHealth(gw.http, 5000)).version, V1, back.out);
    assert.is(fs.readlinkSync(path.join(gw.opt, 'current')), V1);
    assert.not.ok(fs.existsSync(path.join(gw.opt, 'update-pending')));
  } finally {
    gw.stop();
  }
});

test('a second update while one runs is refused; an unpack cut short leaves nothing on flash after the next update', async () => {
  const gw = await installedGateway();
  try {
    const updater = spawn('env', ['-i', path.join(gw.opt, 'current/bin/tu-agent'), 'update', artifact(V2), '--root', gw.root, '--restart-command', `sh ${gw.restart}`, '--timeout-s', '60'], { stdio: 'ignore', detached: true });
    const staging = () => fs.readdirSync(gw.opt).filter((n) => n.startsWith('.update-'));
    await until(() => staging().some((s) => fs.existsSync(path.join(gw.opt, s, 'tu-agent'))), 60_000, 'unpacking started');
    const second = gw.tu('update', artifact(V2), '--restart-command', `sh ${gw.restart}`, '--timeout-s', '60');
    assert.is(second.code, 1, second.out);
    assert.match(second.out, 'another update is running');
    // kill -9 of the whole group: the updater and its tar, mid-unpack.
    process.kill(-updater.pid!, 'SIGKILL');
    await new Promise((r) => updater.once('exit', r));
    assert.ok(staging().length > 0, 'the cut-short unpack left its folder');
    const up = gw.tu('update', artifact(V2), '--restart-command', `sh ${gw.restart}`, '--timeout-s', '60');
    assert.is(up.code, 0, up.out);
    assert.equal(staging(), [], 'no partial release left on flash');
    assert.equal(fs.readdirSync(gw.opt).sort(), [V1, V2, 'current', 'previous'].sort());
  } finally {
    gw.stop();
  }
});

test('a flash too full to unpack the new version is reported as full, not as a damaged tarball, and changes nothing', () => {
  // A 200 MiB filesystem: the installed version takes ~180 MiB, the new one does not fit beside it.
  const mnt = mountTmpfs(200);
  if (!mnt) return;
  try {
    const root = path.join(mnt, 'gw');
    const inst = runToEnd(envI({}, [path.join(unpack(artifact(V1)), 'bin/tu-agent'), 'install', '--no-system', '--root', root]));
    assert.is(inst.code, 0, inst.out);
    const opt = path.join(root, 'opt/tu-agent');
    const free = () => fs.statfsSync(mnt).bavail;
    const before = free();
    const r = runToEnd(envI({}, [path.join(opt, 'current/bin/tu-agent'), 'update', artifact(V2), '--root', root, '--restart-command', 'true', '--timeout-s', '5']));
    assert.is(r.code, 1, r.out);
    assert.match(r.out, /INSTALL_FAILED: not enough free space to unpack .* MB free on the filesystem of .*, it unpacks to about \d+ MB/);
    assert.not.match(r.out, 'damaged', 'copying the tarball again cannot help');
    assert.is(fs.readlinkSync(path.join(opt, 'current')), V1);
    assert.equal(fs.readdirSync(opt).sort(), [V1, 'current'].sort());
    assert.is(free(), before, 'the partial unpack is removed');
  } finally {
    unmount(mnt);
  }
});

test('a truncated tarball is refused as damaged, with what to do, and changes nothing', async () => {
  const gw = await installedGateway();
  try {
    const whole = fs.readFileSync(artifact(V2));
    const truncated = path.join(freshHome(), 'truncated.tar.gz');
    fs.writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
    const r = gw.tu('update', truncated, '--restart-command', `sh ${gw.restart}`, '--timeout-s', '60');
    assert.is(r.code, 1, r.out);
    assert.match(r.out, 'INSTALL_FAILED');
    assert.match(r.out, 'damaged or incomplete');
    assert.is(fs.readlinkSync(path.join(gw.opt, 'current')), V1);
    assert.equal(fs.readdirSync(gw.opt).sort(), [V1, 'current'].sort());
  } finally {
    gw.stop();
  }
});

test.run();
