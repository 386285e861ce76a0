import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mosquittoAcl } from '@tu/shared';
import { tmpDir } from './harness.js';
import { freePort, startDaemon } from './processes.js';


/**
 * Our own Mosquitto (the "external broker") on a free port: no anonymous access, a password
 * file made by mosquitto_passwd, and the ACL generated from the gateway contract
 * (shared/src/gateway-contract.ts `mosquittoAcl`: a gateway writes only its own events and status; the relay reads).
 */
export async function startMosquitto(users: Record<string, string>, relayUser: string): Promise<{ url: string; port: number; stop: () => Promise<void> }> {
  const dir = tmpDir('tu-mosq-');
  const port = await freePort();
  const passwd = path.join(dir, 'passwd');
  fs.writeFileSync(passwd, '');
  for (const [u, p] of Object.entries(users)) execFileSync('mosquitto_passwd', ['-b', passwd, u, p]);
  fs.writeFileSync(path.join(dir, 'acl'), mosquittoAcl(relayUser));
  fs.writeFileSync(
    path.join(dir, 'mosquitto.conf'),
    [`listener ${port} 127.0.0.1`, 'allow_anonymous false', `password_file ${passwd}`, `acl_file ${path.join(dir, 'acl')}`, 'persistence false', `user ${os.userInfo().username}`, 'log_dest stderr', 'log_type error', ''].join('\n'),
  );
  const daemon = await startDaemon('mosquitto', ['-c', path.join(dir, 'mosquitto.conf')], port);
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await daemon.stop('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
