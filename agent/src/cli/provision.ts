/**
 * `tu-agent provision --gateway-id ID --relay mqtts://… --secret-file F [--ca FILE]`:
 * writes the gateway's identity and uplink into the installed config. The secret is
 * copied to /etc/tu-agent/uplink-secret (0640); the config names the file, never the
 * secret. The result is validated before it replaces the old file.
 * `--technician-key FILE`: the relay's Ed25519 public key for technician tokens, copied to
 * /etc/tu-agent/relay-technician-key.pem and named by auth.relayPublicKeyFile; from then on
 * tokens from `npm run relay -- technicians token` are accepted offline.
 */
import fs from 'node:fs';
import path from 'node:path';
import { agentConfigSchema } from '@tu/firmware-config';
import { TuError } from '@tu/shared';
import { writeFileDurable } from '../fs/durable.js';
import { parsePublicKey } from '../http/auth/tokens.js';
import { systemPaths } from './system-paths.js';

export interface ProvisionOptions {
  root: string;
  gatewayId: string;
  relay: string;
  secretFile: string;
  ca?: string | undefined;
  technicianKey?: string | undefined;
  out: (line: string) => void;
}

export async function provisionCommand(o: ProvisionOptions): Promise<number> {
  const p = systemPaths(o.root);
  if (!fs.existsSync(p.configFile)) throw new TuError('INSTALL_FAILED', `${p.configFile} does not exist; run tu-agent install first`);
  let secret: string;
  try {
    secret = fs.readFileSync(o.secretFile, 'utf8').split('\n')[0]!.trim();
  } catch (err) {
    throw new TuError('INSTALL_FAILED', `cannot read the secret file ${o.secretFile}: ${(err as Error).message}`);
  }
  if (secret.length < 16) throw new TuError('INSTALL_FAILED', `${o.secretFile} must hold the gateway secret issued by the relay (16 characters or more) on its first line`);
  const config = JSON.parse(fs.readFileSync(p.configFile, 'utf8')) as Record<string, unknown>;
  const uplink = { ...((config.uplink as Record<string, unknown> | undefined) ?? {}), url: o.relay, passwordFile: '/etc/tu-agent/uplink-secret' } as Record<string, unknown>;
  if (o.ca) {
    const caDest = path.join(p.etcDir, 'relay-ca.pem');
    fs.copyFileSync(o.ca, caDest);
    uplink.tls = { ...((uplink.tls as Record<string, unknown> | undefined) ?? {}), ca: '/etc/tu-agent/relay-ca.pem' };
  }
  let technicianKey: string | undefined;
  if (o.technicianKey) {
    try {
      technicianKey = fs.readFileSync(o.technicianKey, 'utf8');
    } catch (err) {
      throw new TuError('INSTALL_FAILED', `cannot read the technician key ${o.technicianKey}: ${(err as Error).message}`);
    }
    parsePublicKey(technicianKey, o.technicianKey);
  }
  const auth = technicianKey ? { ...((config.auth as Record<string, unknown> | undefined) ?? {}), relayPublicKeyFile: '/etc/tu-agent/relay-technician-key.pem' } : config.auth;
  const next = { ...config, gatewayId: o.gatewayId, uplink, ...(auth ? { auth } : {}) };
  const checked = agentConfigSchema.safeParse(next);
  if (!checked.success) {
    const lines = checked.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message.replace(`${i.path.join('.')}: `, '')}`).join('\n');
    throw new TuError('CONFIG_INVALID', `the provisioned config would be invalid, nothing was written:\n${lines}`);
  }
  await writeFileDurable(p.uplinkSecretFile, secret + '\n');
  fs.chmodSync(p.uplinkSecretFile, 0o640);
  if (technicianKey) await writeFileDurable(p.relayTechnicianKeyFile, technicianKey);
  await writeFileDurable(p.configFile, JSON.stringify(next, null, 2) + '\n');
  fs.chmodSync(p.configFile, 0o640);
  o.out(`provisioned gateway ${o.gatewayId} with uplink ${o.relay}${technicianKey ? ' and the relay\'s technician key' : ''}; restart the agent: systemctl restart tu-agent`);
  return 0;
}
