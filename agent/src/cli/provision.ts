/**
 * `tu-agent provision --gateway-id ID --relay mqtts://… --secret-file F [--ca FILE]`:
 * writes the gateway's identity and uplink into the installed config. The secret is
 * copied to /etc/tu-agent/uplink-secret (0640); the config names the file, never the
 * secret. Every input and the resulting config are checked before anything is written; each
 * file is then written durably, keeping the owner and group of the file it replaces.
 * `--technician-key FILE`: the relay's Ed25519 public key for technician tokens, copied to
 * /etc/tu-agent/relay-technician-key.pem and named by auth.relayPublicKeyFile; from then on
 * tokens from `npm run relay -- technicians token` are accepted offline.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { agentConfigSchema, readAgentConfigObject } from '@tu/firmware-config';
import { TuError } from '@tu/shared';
import { writeFileDurable, type DurableFileOptions } from '../fs/durable.js';
import { parsePublicKey } from '../http/auth/tokens.js';
import { redactUrl } from '../uplink/relay-connection.js';
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

/** Paths as the agent sees them on the gateway (the config names them; --root is only where they are written now). */
const ON_GATEWAY = systemPaths('/');

function readInput(what: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new TuError('INSTALL_FAILED', `cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

/** The relay's CA file: one or more PEM X.509 certificates, each parsed, or refused with the reason. */
function checkCa(pem: string, file: string): void {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  if (!blocks) throw new TuError('CONFIG_INVALID', `--ca ${file} is not a PEM X.509 certificate (no -----BEGIN CERTIFICATE----- block); give the CA certificate that signed the relay's certificate`);
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new TuError('CONFIG_INVALID', `--ca ${file}: certificate ${i + 1} cannot be read as X.509: ${(err as Error).message}`);
    }
  });
}

/**
 * Who a written file belongs to: the file it replaces keeps its owner and group; a new one
 * gets those of the config (install made it root:tu-agent). The service runs as tu-agent, so a
 * secret or config left root:root 0640 would stop it with EACCES. Only root can give a file
 * away; anyone else writes files that are theirs anyway.
 */
function ownerOf(file: string, fallback: { uid: number; gid: number }): DurableFileOptions['owner'] | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const st = fs.statSync(file);
    return { uid: st.uid, gid: st.gid };
  } catch {
    return fallback;
  }
}

export async function provisionCommand(o: ProvisionOptions): Promise<number> {
  const p = systemPaths(o.root);
  if (!fs.existsSync(p.configFile)) throw new TuError('INSTALL_FAILED', `${p.configFile} does not exist; run tu-agent install first`);
  // Everything is read and checked first: a refused provision writes nothing.
  const config = readAgentConfigObject(p.configFile);
  const secret = readInput('the secret file', o.secretFile).split('\n')[0]!.trim();
  if (secret.length < 16) throw new TuError('INSTALL_FAILED', `${o.secretFile} must hold the gateway secret issued by the relay (16 characters or more) on its first line`);
  const ca = o.ca === undefined ? undefined : readInput('the CA file', o.ca);
  if (ca !== undefined) checkCa(ca, o.ca!);
  const technicianKey = o.technicianKey === undefined ? undefined : readInput('the technician key', o.technicianKey);
  if (technicianKey !== undefined) parsePublicKey(technicianKey, o.technicianKey!);

  // A password or username left from before would win over the new secret file
  // (uplink/relay-connection.ts reads password first; the username defaults to the gateway id).
  const { password: _password, username: _username, ...oldUplink } = (config.uplink as Record<string, unknown> | undefined) ?? {};
  const uplink: Record<string, unknown> = { ...oldUplink, url: o.relay, passwordFile: ON_GATEWAY.uplinkSecretFile };
  if (ca !== undefined) uplink.tls = { ...((uplink.tls as Record<string, unknown> | undefined) ?? {}), ca: ON_GATEWAY.relayCaFile };
  const auth = technicianKey !== undefined ? { ...((config.auth as Record<string, unknown> | undefined) ?? {}), relayPublicKeyFile: ON_GATEWAY.relayTechnicianKeyFile } : config.auth;
  const next = { ...config, gatewayId: o.gatewayId, uplink, ...(auth ? { auth } : {}) };
  const checked = agentConfigSchema.safeParse(next);
  if (!checked.success) {
    const lines = checked.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message.replace(`${i.path.join('.')}: `, '')}`).join('\n');
    throw new TuError('CONFIG_INVALID', `the provisioned config would be invalid, nothing was written:\n${lines}`);
  }

  const st = fs.statSync(p.configFile);
  const installed = { uid: st.uid, gid: st.gid };
  const write = (file: string, data: string, mode: number) => {
    const owner = ownerOf(file, installed);
    return writeFileDurable(file, data, { mode, ...(owner ? { owner } : {}) });
  };
  // The config last: it never names a file that is not written yet.
  await write(p.uplinkSecretFile, secret + '\n', 0o640);
  if (ca !== undefined) await write(p.relayCaFile, ca, 0o644);
  if (technicianKey !== undefined) await write(p.relayTechnicianKeyFile, technicianKey, 0o644);
  await write(p.configFile, JSON.stringify(next, null, 2) + '\n', 0o640);
  o.out(`provisioned gateway ${o.gatewayId} with uplink ${redactUrl(o.relay)}${technicianKey !== undefined ? " and the relay's technician key" : ''}; restart the agent: systemctl restart tu-agent`);
  return 0;
}
