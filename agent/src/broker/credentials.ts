import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SERVICES, type ServiceName } from '@tu/shared';
import { createFileDurableSync } from '../fs/durable.js';

/**
 * Who a bus client is. Built-in principals are named by their username; their
 * password is derived from the gateway's bus secret, so every process holding the
 * secret (the agent, a service started as its own process) can authenticate, and
 * nothing else can.
 */
export type Principal =
  | { role: 'orchestrator'; service: 'svc-analysis-orchestrator' }
  | { role: 'service'; service: Exclude<ServiceName, 'svc-analysis-orchestrator'> }
  | { role: 'observer'; name: string };

/** Every service of the catalogue (shared/src/catalog.ts) has a login: a new step's service needs no change here. */
const SERVICE_USERS: Record<string, Principal> = Object.fromEntries(
  SERVICES.map((service): [string, Principal] =>
    service === 'svc-analysis-orchestrator' ? [service, { role: 'orchestrator', service }] : [service, { role: 'service', service }],
  ),
);

/** Observers (local UI, uplink, tools) may subscribe to events and nothing else. */
const OBSERVER_PREFIX = 'observer:';

export function principalFor(username: string): Principal | undefined {
  if (Object.hasOwn(SERVICE_USERS, username)) return SERVICE_USERS[username];
  if (username.startsWith(OBSERVER_PREFIX) && /^[A-Za-z0-9_.-]{1,64}$/.test(username.slice(OBSERVER_PREFIX.length))) {
    return { role: 'observer', name: username.slice(OBSERVER_PREFIX.length) };
  }
  return undefined;
}

export const observerUsername = (name: string): string => `${OBSERVER_PREFIX}${name}`;

/**
 * The MQTT client ids a login owns: its username, or its username + `:` + a suffix. MQTT
 * lets a new connection with a taken client id kick the old one off, so an id owned by one
 * principal must be unreachable for every other: no username contains another's as a
 * `:`-terminated prefix (service names and observer names hold no `:`).
 */
export const CLIENT_ID_SEPARATOR = ':';

export function ownsClientId(username: string, clientId: string): boolean {
  return clientId === username || (clientId.startsWith(username + CLIENT_ID_SEPARATOR) && clientId.length > username.length + 1);
}

export function derivePassword(secret: string, username: string): string {
  return createHmac('sha256', secret).update(`tu-bus:${username}`).digest('base64url');
}

export function verifyPassword(secret: string, username: string, password: Buffer | undefined): boolean {
  if (!password) return false;
  const expected = Buffer.from(derivePassword(secret, username));
  return password.length === expected.length && timingSafeEqual(password, expected);
}

/**
 * The bus secret: from config/env if given, else from the secret file, created with
 * mode 0600 on first start. Never logged, never committed.
 */
export function resolveBusSecret(opts: { secret?: string; secretFile?: string; dataDir: string }): string {
  return opts.secret ?? readOrCreateSecret(opts.secretFile ?? path.join(opts.dataDir, 'bus-secret'));
}

/**
 * A secret kept in a file: read it, or create it (32 random bytes, mode 0600) when missing or
 * too short. Written durably (agent/src/fs/durable.ts): a plain write right before a power cut
 * could leave the file empty, and a new secret on the next start locks out every service process
 * and observer that still holds the old one.
 */
export function readOrCreateSecret(file: string): string {
  for (let attempt = 0; ; attempt++) {
    try {
      const s = fs.readFileSync(file, 'utf8').trim();
      if (s.length >= 32) return s;
      // Too short (empty after a power cut, or hand-edited): replaced by a new one below.
      if (attempt === 0) fs.rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const secret = randomBytes(32).toString('base64url');
    if (createFileDurableSync(file, secret + '\n', 0o600)) return secret;
    // Another process created it meanwhile: read theirs (once more at most).
    if (attempt > 0) throw new Error(`the bus secret ${file} is being replaced by another process; start again`);
  }
}
