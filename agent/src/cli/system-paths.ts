/**
 * Where an installed agent lives on a gateway. `root` prefixes every path (like DESTDIR),
 * so an image builder or a test can install into a folder; on a gateway it is `/`.
 */
import path from 'node:path';

export const SERVICE_NAME = 'tu-agent';
export const SERVICE_USER = 'tu-agent';

export interface SystemPaths {
  root: string;
  /** /opt/tu-agent: one folder per version, plus `current` and `previous` links. */
  prefix: string;
  current: string;
  previous: string;
  etcDir: string;
  configFile: string;
  uplinkSecretFile: string;
  /** The relay's CA certificate(s) (tu-agent provision --ca). */
  relayCaFile: string;
  /** The relay's public key for technician tokens (tu-agent provision --technician-key). */
  relayTechnicianKeyFile: string;
  dataDir: string;
  unitFile: string;
  binLink: string;
}

export function systemPaths(root = '/'): SystemPaths {
  const r = (p: string) => path.join(root, p);
  return {
    root,
    prefix: r('/opt/tu-agent'),
    current: r('/opt/tu-agent/current'),
    previous: r('/opt/tu-agent/previous'),
    etcDir: r('/etc/tu-agent'),
    configFile: r('/etc/tu-agent/config.json'),
    uplinkSecretFile: r('/etc/tu-agent/uplink-secret'),
    relayCaFile: r('/etc/tu-agent/relay-ca.pem'),
    relayTechnicianKeyFile: r('/etc/tu-agent/relay-technician-key.pem'),
    dataDir: r('/var/lib/tu-agent'),
    unitFile: r('/etc/systemd/system/tu-agent.service'),
    binLink: r('/usr/local/bin/tu-agent'),
  };
}
