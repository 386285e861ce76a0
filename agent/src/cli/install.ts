/**
 * `tu-agent install`: run from an unpacked release folder. Copies it to
 * /opt/tu-agent/<version>, points /opt/tu-agent/current at it, writes the default
 * /etc/tu-agent/config.json (kept if present), creates /var/lib/tu-agent owned by the
 * tu-agent system user, installs the systemd unit and /usr/local/bin/tu-agent, and
 * starts the service when systemd runs. Idempotent: a second run changes nothing.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { profilePath } from '@tu/firmware-config';
import { TuError } from '@tu/shared';
import { createFileDurableSync } from '../fs/durable.js';
import { fsyncDirSync, fsyncTreeSync } from '../fs/durable.js';
import { appLayout } from '../release/layout.js';
import { removeCutShortCopies } from './leftovers.js';
import { linkedDir, switchLink, switchLinkTo } from './links.js';
import { SERVICE_NAME, SERVICE_USER, systemPaths, type SystemPaths } from './system-paths.js';
import { installUnit, systemdRuns } from './unit-file.js';

export interface InstallOptions {
  root: string;
  /** Do not create the user, chown, or call systemctl (image building, tests). */
  noSystem: boolean;
  out: (line: string) => void;
}

const isRealSystem = (o: InstallOptions) => o.root === '/' && !o.noSystem;

function run(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (err) {
    throw new TuError('INSTALL_FAILED', `${cmd} ${args.join(' ')} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** Copies an unpacked release folder to <prefix>/<version> (skipped when that version is there). */
export function placeVersion(appDir: string, version: string, p: SystemPaths, out: (l: string) => void): string {
  const dest = path.join(p.prefix, version);
  if (fs.existsSync(path.join(dest, 'release.json'))) {
    out(`version ${version} already in ${dest}`);
    return dest;
  }
  fs.mkdirSync(p.prefix, { recursive: true });
  removeCutShortCopies(p, out, { updateLockHeld: false });
  const staging = path.join(p.prefix, `.staging-${version}-${process.pid}`);
  fs.rmSync(staging, { recursive: true, force: true });
  fs.cpSync(appDir, staging, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  // On disk before the link names it (a power cut right after install must not leave empty files).
  fsyncTreeSync(staging);
  fs.renameSync(staging, dest);
  fsyncDirSync(p.prefix);
  out(`copied ${appDir} to ${dest}`);
  return dest;
}

function ensureUser(p: SystemPaths, o: InstallOptions): void {
  if (!isRealSystem(o)) return;
  try {
    execFileSync('id', ['-u', SERVICE_USER], { stdio: 'ignore' });
  } catch {
    run('useradd', ['--system', '--home-dir', '/var/lib/tu-agent', '--no-create-home', '--shell', '/usr/sbin/nologin', SERVICE_USER]);
    o.out(`created system user ${SERVICE_USER}`);
  }
  run('chown', ['-R', `${SERVICE_USER}:${SERVICE_USER}`, p.dataDir]);
  run('chown', [`root:${SERVICE_USER}`, p.etcDir, p.configFile]);
}

/**
 * Creates the agent's own folder (/etc/tu-agent, /var/lib/tu-agent) with `mode`, and its
 * parents as any folder (mkdir's default, with the umask): /etc, /var and /var/lib belong to
 * the system, and an image built with --root must not get them 0750. An existing folder is
 * left as it is (install again changes nothing).
 */
function makeOwnDir(dir: string, mode: number): void {
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  try {
    fs.mkdirSync(dir, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  fs.chmodSync(dir, mode);
}

export function writeDefaultConfig(p: SystemPaths, out: (l: string) => void): void {
  if (fs.existsSync(p.configFile)) {
    out(`kept ${p.configFile}`);
    return;
  }
  const profile = JSON.parse(fs.readFileSync(profilePath('field-gateway'), 'utf8')) as Record<string, unknown>;
  delete profile.$schema;
  // The model is the one the running version ships (no model.dir), the data on /var/lib.
  const model = (profile.model ?? {}) as Record<string, unknown>;
  delete model.dir;
  const config = { ...profile, dataDir: '/var/lib/tu-agent', model };
  makeOwnDir(p.etcDir, 0o750);
  // Durably: a power cut right after install must not leave an empty config (the agent would then refuse to start).
  if (createFileDurableSync(p.configFile, JSON.stringify(config, null, 2) + '\n', 0o640)) fs.chmodSync(p.configFile, 0o640); // whatever the umask
  out(`wrote ${p.configFile} (set the gateway id and uplink with: tu-agent provision)`);
}

export function installCommand(o: InstallOptions): number {
  const layout = appLayout();
  if (!layout.release || !layout.appDir) throw new TuError('INSTALL_FAILED', 'tu-agent install runs from an unpacked release (tu-agent/bin/tu-agent install), not from a checkout; build one with npm run package');
  const p = systemPaths(o.root);
  const dest = placeVersion(layout.appDir, layout.release.version, p, o.out);
  const before = linkedDir(p.current);
  if (before !== dest) {
    if (before) switchLinkTo(p.previous, before);
    switchLinkTo(p.current, dest);
    o.out(`${p.current} -> ${dest}`);
  }
  writeDefaultConfig(p, o.out);
  makeOwnDir(p.dataDir, 0o750);
  // daemon-reload follows below when systemd runs.
  installUnit(p, dest, false, o.out);
  fs.mkdirSync(path.dirname(p.binLink), { recursive: true });
  switchLink(p.binLink, path.join('/opt/tu-agent/current/bin/tu-agent'));
  ensureUser(p, o);
  if (isRealSystem(o) && systemdRuns()) {
    run('systemctl', ['daemon-reload']);
    run('systemctl', ['enable', '--now', SERVICE_NAME]);
    o.out(`service ${SERVICE_NAME} enabled and started; check it with: tu-agent status`);
  } else {
    o.out(`installed; start it with: systemctl daemon-reload && systemctl enable --now ${SERVICE_NAME}`);
  }
  return 0;
}

export function uninstallCommand(o: InstallOptions & { purge: boolean }): number {
  const p = systemPaths(o.root);
  if (isRealSystem(o) && systemdRuns()) {
    try {
      execFileSync('systemctl', ['disable', '--now', SERVICE_NAME], { stdio: 'ignore' });
    } catch {
      // not enabled: nothing to stop
    }
  }
  for (const f of [p.unitFile, p.binLink]) fs.rmSync(f, { force: true });
  fs.rmSync(p.prefix, { recursive: true, force: true });
  o.out(`removed ${p.prefix}, ${p.unitFile}, ${p.binLink}`);
  if (o.purge) {
    fs.rmSync(p.etcDir, { recursive: true, force: true });
    fs.rmSync(p.dataDir, { recursive: true, force: true });
    o.out(`purged ${p.etcDir} and ${p.dataDir}`);
  } else {
    o.out(`kept ${p.etcDir} and ${p.dataDir} (add --purge to remove them)`);
  }
  return 0;
}
