/**
 * The systemd unit installed from a release folder. `install` and `update` both install the
 * unit of the version they switch to: `update` once left the first install's unit in place for
 * good, so a release that changed its unit (memory limits, hardening, the recovery step) never
 * got it on a gateway that was updated rather than installed afresh.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TuError } from '@tu/shared';
import { writeFileDurableSync } from '../fs/durable.js';
import { SERVICE_NAME, type SystemPaths } from './system-paths.js';

export const systemdRuns = (): boolean => fs.existsSync('/run/systemd/system');

/**
 * Installs `versionDir`'s unit as p.unitFile when it differs, durably. `reload`: tell systemd
 * (`systemctl daemon-reload`), so that the next restart uses it. True when the file changed.
 */
export function installUnit(p: SystemPaths, versionDir: string, reload: boolean, out: (l: string) => void): boolean {
  const src = path.join(versionDir, 'systemd', `${SERVICE_NAME}.service`);
  let text: Buffer;
  try {
    text = fs.readFileSync(src);
  } catch (err) {
    throw new TuError('INSTALL_FAILED', `cannot read the unit ${src} (${(err as Error).message}): not a complete tu-agent release`);
  }
  let installed: Buffer | null = null;
  try {
    installed = fs.readFileSync(p.unitFile);
  } catch {
    // not installed yet
  }
  if (installed?.equals(text)) return false;
  fs.mkdirSync(path.dirname(p.unitFile), { recursive: true });
  writeFileDurableSync(p.unitFile, text, 0o644);
  out(`installed ${p.unitFile} from ${path.basename(versionDir)}`);
  if (reload) {
    try {
      execFileSync('systemctl', ['daemon-reload'], { stdio: ['ignore', 'inherit', 'inherit'] });
    } catch (err) {
      throw new TuError('INSTALL_FAILED', `systemctl daemon-reload failed: ${(err as Error).message}`, { cause: err });
    }
  }
  return true;
}
