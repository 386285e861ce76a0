import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;

/** A new gateway secret (shown once by the CLI): 32 random bytes, base64url. */
export const generateSecret = (): string => randomBytes(32).toString('base64url');

const derive = (secret: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> =>
  new Promise((resolve, reject) => scrypt(secret, salt, KEYLEN, { N: n, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))));

/** `scrypt$N$r$p$salt$hash` (base64url parts). */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(secret, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** The stored hash of a revoked gateway: not of the scrypt form, so no secret verifies against it. */
export const REVOKED_SECRET_HASH = 'revoked';

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const expected = Buffer.from(parts[5]!, 'base64url');
  const key = await derive(secret, Buffer.from(parts[4]!, 'base64url'), n, r, p);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/**
 * Remembers successful verifications (keyed by a hash of gateway, secret and stored hash) so a
 * reconnect storm of many gateways does not cost one scrypt each; bounded.
 */
export class VerifiedCache {
  #ok = new Set<string>();
  constructor(private readonly max = 10_000) {}
  #key = (id: string, secret: string, stored: string): string => createHash('sha256').update(`${id}\0${secret}\0${stored}`).digest('base64');
  /** Whether this secret was verified before (no scrypt: cheap enough to answer while logins are throttled). */
  known(id: string, secret: string, stored: string): boolean {
    return this.#ok.has(this.#key(id, secret, stored));
  }
  async verify(id: string, secret: string, stored: string): Promise<boolean> {
    const k = this.#key(id, secret, stored);
    if (this.#ok.has(k)) return true;
    const ok = await verifySecret(secret, stored);
    if (ok) {
      if (this.#ok.size >= this.max) this.#ok.clear();
      this.#ok.add(k);
    }
    return ok;
  }
}
