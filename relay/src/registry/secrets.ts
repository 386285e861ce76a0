import { createHmac, hkdfSync, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

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
 * Verified logins the relay instances share (Redis, relay/src/ingest/redis-state.ts). Holds only
 * tags (`VerifiedCache` says what they are), never a secret or anything scrypt could be skipped with.
 */
export interface SharedVerifiedLogins {
  /** Whether `tag` was recorded; false when the store cannot answer now (the caller runs scrypt). */
  hasVerified(tag: string): Promise<boolean>;
  /** Records `tag`; a failure is swallowed (the next instance asked runs scrypt once more). */
  addVerified(tag: string): Promise<void>;
}

/** The key of the shared tags: derived from a secret every instance has, never stored with the tags. */
export const verifiedLoginKey = (secret: string): Buffer => Buffer.from(hkdfSync('sha256', secret, '', 'tu-relay verified gateway logins', 32));

export interface LoginStats {
  /** Logins whose secret was checked with scrypt (the costly path), and those of them refused. */
  scrypt: number;
  refused: number;
  /** Logins accepted from this instance's memory, or from a tag another instance shared. */
  memory: number;
  shared: number;
}

/**
 * Remembers successful verifications so a reconnect storm does not cost one scrypt per gateway.
 * A verification is remembered as a tag, HMAC(key, gateway id, secret, stored hash): a rotated or
 * revoked credential has another stored hash, so its old tags never match again.
 * - In memory (bounded): this instance's own logins.
 * - Shared (optional): when an instance dies, its gateways log in to the others at once; without
 *   the shared tags each of those logins costs a full scrypt (40–50 ms of CPU at the production
 *   cost, relay/README.md "Fleet load and faults"). The key is not in the store, so whoever can
 *   read the store learns nothing to guess secrets with (an unkeyed hash would let a weak secret
 *   be guessed at hash speed instead of scrypt speed), and whoever can write to it cannot make a
 *   tag for a secret without the key.
 */
export class VerifiedCache {
  #ok = new Set<string>();
  readonly #key: Buffer;
  readonly #shared: SharedVerifiedLogins | undefined;
  readonly #max: number;
  readonly stats: LoginStats = { scrypt: 0, refused: 0, memory: 0, shared: 0 };

  constructor(opts: { max?: number; shared?: { store: SharedVerifiedLogins; key: Buffer } } = {}) {
    this.#max = opts.max ?? 10_000;
    this.#shared = opts.shared?.store;
    // Without a shared store the tags never leave this process: any key will do.
    this.#key = opts.shared?.key ?? randomBytes(32);
  }

  #tag = (id: string, secret: string, stored: string): string => createHmac('sha256', this.#key).update(`${id}\0${secret}\0${stored}`).digest('base64url');

  #remember(tag: string): void {
    if (this.#ok.size >= this.#max) this.#ok.clear();
    this.#ok.add(tag);
  }

  /** Whether this secret was verified before, here or by another instance (no scrypt: cheap enough to answer while logins are throttled). */
  async known(id: string, secret: string, stored: string): Promise<boolean> {
    return (await this.#lookup(this.#tag(id, secret, stored))) !== undefined;
  }

  async #lookup(tag: string): Promise<'memory' | 'shared' | undefined> {
    if (this.#ok.has(tag)) return 'memory';
    if (!this.#shared || !(await this.#shared.hasVerified(tag))) return undefined;
    this.#remember(tag);
    return 'shared';
  }

  async verify(id: string, secret: string, stored: string): Promise<boolean> {
    const tag = this.#tag(id, secret, stored);
    const hit = await this.#lookup(tag);
    if (hit) {
      this.stats[hit]++;
      return true;
    }
    this.stats.scrypt++;
    const ok = await verifySecret(secret, stored);
    if (!ok) {
      this.stats.refused++;
      return false;
    }
    this.#remember(tag);
    if (this.#shared) void this.#shared.addVerified(tag);
    return true;
  }
}
