/**
 * Technician tokens (format: shared/src/technician-token.ts): short-lived JWTs the agent
 * verifies with no network.
 * Two signers are trusted:
 *  - the device key, an Ed25519 key pair kept in {dataDir}/technician-key.pem (0600) and
 *    created on first start; `tu-agent token` and `npm start` sign with it, so holding the
 *    data directory is the proof of being on the device;
 *  - the relay, whose public key is provisioned on the gateway (auth.relayPublicKey[File],
 *    `tu-agent provision --technician-key`); `npm run relay -- technicians token` signs.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { decodeJwt, jwtVerify } from 'jose';
import { z } from 'zod';
import { TuError, type Logger } from '@tu/shared';
import { createFileDurableSync } from '../../fs/durable.js';
import { moveAside } from '../../fs/set-aside.js';
import { ROLES, type Role } from '@tu/shared/internal/technician-roles';
import { DEVICE_ISSUER, RELAY_ISSUER, TOKEN_ALG, type TokenIssuer } from '@tu/shared/internal/technician-token';

export const DEVICE_KEY_FILE = 'technician-key.pem';

/** Who is calling, from a verified token. */
export interface Technician {
  sub: string;
  roles: Role[];
  issuer: TokenIssuer;
  /** Unix seconds. */
  exp: number;
}

const claims = z.object({
  sub: z.string().min(1).max(128),
  roles: z.array(z.enum(ROLES)).min(1).max(ROLES.length),
  iat: z.number().int(),
  exp: z.number().int(),
});

/** The device key's file: created (Ed25519, PKCS#8 PEM, mode 0600) when missing. */
export function deviceKeyFile(dataDir: string): string {
  return path.join(path.resolve(dataDir), DEVICE_KEY_FILE);
}

/**
 * The device's private key: read, or created on first use. Created exclusively and durably
 * (createFileDurableSync), so an agent starting while an installer runs `tu-agent token` ends up
 * with one key, not two, and a power cut right after cannot leave an empty file. Created by root
 * (the installer) in a data dir owned by the service user, it is handed to that user: the agent
 * must read it.
 *
 * An empty or unreadable key file (left by a power cut before keys were written durably, or
 * damaged) is set aside as `technician-key.pem.bad-{time}` and a new key made: refusing it kept
 * the gateway from starting at all, and the key only signs technician tokens, which a technician
 * then gets anew (`tu-agent token`).
 */
export function readOrCreateDeviceKey(dataDir: string, log?: Pick<Logger, 'warn'>): KeyObject {
  const file = deviceKeyFile(dataDir);
  const existing = readKey(file);
  if (existing.key) return existing.key;
  if (existing.bad) {
    let aside: string;
    try {
      aside = moveAside(file);
    } catch (err) {
      throw new TuError('STORAGE_FAILED', `the technician key ${file} is unreadable (${existing.bad}) and cannot be moved aside: ${(err as Error).message}`);
    }
    log?.warn({ file, movedTo: aside, reason: existing.bad }, 'the technician key was unreadable; moved it aside and made a new one (issue technicians new tokens)');
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  let created: boolean;
  try {
    created = createFileDurableSync(file, pem, 0o600);
  } catch (err) {
    throw new TuError('STORAGE_FAILED', `cannot write the technician key ${file}: ${(err as Error).message}`);
  }
  if (!created) {
    const other = readKey(file);
    if (other.key) return other.key;
    throw new TuError('STORAGE_FAILED', `cannot read the technician key ${file}: ${other.bad ?? 'missing'}`);
  }
  try {
    const owner = fs.statSync(path.dirname(file));
    if (process.getuid?.() === 0 && owner.uid !== 0) fs.chownSync(file, owner.uid, owner.gid);
  } catch {
    // best effort: only matters when root creates the key for the service user
  }
  return privateKey;
}

/** The key in `file`; `bad` says why a file that is there gives none; neither: no file. */
function readKey(file: string): { key?: KeyObject; bad?: string } {
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new TuError('STORAGE_FAILED', `cannot read the technician key ${file}: ${(err as Error).message}`);
  }
  if (pem.trim() === '') return { bad: 'the file is empty' };
  try {
    return { key: createPrivateKey(pem) };
  } catch (err) {
    return { bad: (err as Error).message };
  }
}

/** An Ed25519 public key from PEM (SPKI), refused with a reason when it is anything else. */
export function parsePublicKey(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new TuError('CONFIG_INVALID', `${what} is not a PEM public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new TuError('CONFIG_INVALID', `${what} is a ${key.asymmetricKeyType ?? 'unknown'} key; technician tokens are signed with Ed25519`);
  return key;
}

export interface VerifierOptions {
  gatewayId: string;
  deviceKey: KeyObject;
  relayPublicKey?: KeyObject | undefined;
  maxTtlS: number;
  /** Unix seconds (injected clock for tests of expiry). */
  now?: () => number;
}

export interface TokenVerifier {
  /** The technician a token names; TuError TOKEN_INVALID when it is not one this gateway trusts. */
  verify(token: string): Promise<Technician>;
}

export function createTokenVerifier(o: VerifierOptions): TokenVerifier {
  const devicePublic = createPublicKey(o.deviceKey);
  const invalid = (why: string) => new TuError('TOKEN_INVALID', `The technician token is not accepted: ${why}. Get a new one (\`tu-agent token\` on the gateway, or from the relay operator).`);
  return {
    async verify(token) {
      let issuer: unknown;
      try {
        issuer = decodeJwt(token).iss;
      } catch {
        throw invalid('it is not a JWT');
      }
      // The issuer only picks the key; the signature is then checked with that key alone.
      const key = issuer === DEVICE_ISSUER ? devicePublic : issuer === RELAY_ISSUER ? o.relayPublicKey : undefined;
      if (!key) throw invalid(issuer === RELAY_ISSUER ? 'this gateway has no relay key provisioned (auth.relayPublicKeyFile)' : 'unknown issuer');
      let payload;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: [TOKEN_ALG],
          issuer: issuer as string,
          audience: o.gatewayId,
          requiredClaims: ['exp', 'iat', 'sub'],
          ...(o.now ? { currentDate: new Date(o.now() * 1000) } : {}),
        }));
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'ERR_JWT_EXPIRED') throw invalid('it has expired');
        if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && (err as { claim?: string }).claim === 'aud') throw invalid(`it was made for another gateway, not ${o.gatewayId}`);
        if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw invalid('its signature does not match the key of this gateway or its relay');
        throw invalid((err as Error).message.slice(0, 160));
      }
      const c = claims.safeParse(payload);
      if (!c.success) throw invalid('it lacks a technician name (sub) or valid roles (view, upload, register, teach)');
      if (c.data.exp - c.data.iat > o.maxTtlS) throw invalid(`it is valid for longer than this gateway allows (auth.maxTokenTtlS = ${o.maxTtlS} s)`);
      return { sub: c.data.sub, roles: c.data.roles, issuer: issuer as Technician['issuer'], exp: c.data.exp };
    },
  };
}

/** The relay's technician public key from the config (inline PEM or file), if provisioned. */
export function relayPublicKeyFrom(auth: { relayPublicKey?: string | undefined; relayPublicKeyFile?: string | undefined }): KeyObject | undefined {
  if (auth.relayPublicKey) return parsePublicKey(auth.relayPublicKey, 'auth.relayPublicKey');
  if (!auth.relayPublicKeyFile) return undefined;
  let pem: string;
  try {
    pem = fs.readFileSync(auth.relayPublicKeyFile, 'utf8');
  } catch (err) {
    throw new TuError('CONFIG_INVALID', `auth.relayPublicKeyFile ${auth.relayPublicKeyFile} cannot be read: ${(err as Error).message}`);
  }
  return parsePublicKey(pem, `auth.relayPublicKeyFile ${auth.relayPublicKeyFile}`);
}

/** The device key when this user can read it (no key is created): for commands that only read. */
export function readDeviceKey(dataDir: string): KeyObject | undefined {
  try {
    return createPrivateKey(fs.readFileSync(deviceKeyFile(dataDir), 'utf8'));
  } catch {
    return undefined;
  }
}
