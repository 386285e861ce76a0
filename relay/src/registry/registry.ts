import { TuError } from '@tu/shared';
import { ID_RE } from '../config.js';
import type { GatewayRow, Storage } from '../storage/types.js';
import { generateSecret, hashSecret, REVOKED_SECRET_HASH, VerifiedCache, type LoginStats, type SharedVerifiedLogins } from './secrets.js';

export interface GatewayInfo {
  id: string;
  tenantId: string;
  name: string | null;
}

/**
 * Tenants and gateways (with scrypt-hashed secrets), kept in the relay storage. Gateways are
 * cached in memory once seen (ingress and tenant checks are on the hot path); a miss reads storage.
 */
export class Registry {
  #gateways = new Map<string, GatewayRow>();
  readonly #verified: VerifiedCache;
  /** `sharedLogins`: verified logins shared with the other instances (secrets.ts `VerifiedCache`). */
  constructor(
    private readonly storage: Storage,
    opts: { sharedLogins?: { store: SharedVerifiedLogins; key: Buffer } } = {},
  ) {
    this.#verified = new VerifiedCache(opts.sharedLogins ? { shared: opts.sharedLogins } : {});
  }

  /** How logins were verified (metrics). */
  get loginStats(): Readonly<LoginStats> {
    return this.#verified.stats;
  }

  async addTenant(id: string, name?: string): Promise<void> {
    if (!ID_RE.test(id)) throw new TuError('INVALID_REQUEST', 'tenant id: 1-64 characters A-Z a-z 0-9 _ -');
    await this.storage.addTenant({ id, name: name ?? null });
  }

  /** Registers a gateway; returns the generated secret (store it on the gateway; it is not kept in clear). */
  async addGateway(id: string, tenantId: string, opts: { name?: string; secret?: string } = {}): Promise<string> {
    if (!ID_RE.test(id)) throw new TuError('INVALID_REQUEST', 'gateway id: 1-64 characters A-Z a-z 0-9 _ -');
    const secret = opts.secret ?? generateSecret();
    await this.storage.addGateway({ id, tenantId, name: opts.name ?? null, secretHash: await hashSecret(secret) });
    return secret;
  }

  /** The gateway, from cache or storage (undefined when unknown). */
  async gateway(id: string): Promise<GatewayInfo | undefined> {
    const cached = this.#gateways.get(id);
    if (cached) return cached;
    if (!ID_RE.test(id)) return undefined;
    const row = await this.storage.getGateway(id);
    if (row) this.#gateways.set(id, row);
    return row;
  }

  /** The cached gateway, when it has been seen already (synchronous hot path). */
  cached(id: string): GatewayInfo | undefined {
    return this.#gateways.get(id);
  }

  /**
   * A gateway's login at the embedded ingress, against its row as storage has it now: a gateway
   * revoked or given a new secret through any instance (or the CLI) is refused at its next
   * connection on every instance, not only on the one whose cache was told. When storage does
   * not answer, the cached row (logins keep working through a database outage; a revocation
   * made meanwhile applies once it answers again); with no cached row either, the error.
   */
  async authenticate(id: string, secret: string): Promise<GatewayInfo | undefined> {
    if (!ID_RE.test(id)) return undefined;
    let row: GatewayRow | undefined;
    try {
      row = await this.#fresh(id);
    } catch (err) {
      row = this.#gateways.get(id);
      if (!row) throw err;
    }
    if (!row) return undefined;
    return (await this.#verified.verify(id, secret, row.secretHash)) ? row : undefined;
  }

  /**
   * Revokes a gateway: its stored secret hash is replaced by one no secret matches, so every
   * relay instance refuses it at its next check that reads storage (`authenticateFresh`,
   * `active`). Its events stay. False when the gateway is unknown.
   */
  async revoke(id: string): Promise<boolean> {
    const ok = await this.storage.setGatewaySecretHash(id, REVOKED_SECRET_HASH);
    this.#gateways.delete(id);
    return ok;
  }

  /**
   * `authenticate` against storage rather than this instance's cache: another instance may have
   * revoked the gateway (the broker auth routes, relay/src/http/routes/broker-auth.ts).
   * `onlyKnown` (while failed logins are throttled): only a secret this instance verified before.
   */
  async authenticateFresh(id: string, secret: string, opts: { onlyKnown?: boolean } = {}): Promise<GatewayInfo | undefined> {
    const row = await this.#fresh(id);
    if (!row) return undefined;
    // onlyKnown: a secret verified before passes, any other is refused without computing scrypt.
    if (opts.onlyKnown) return (await this.#verified.known(id, secret, row.secretHash)) ? row : undefined;
    return (await this.#verified.verify(id, secret, row.secretHash)) ? row : undefined;
  }

  /** Whether the gateway is registered and not revoked, read from storage (refreshes the cache). */
  async active(id: string): Promise<boolean> {
    return (await this.#fresh(id)) !== undefined;
  }

  /** The gateway as storage has it now, unless unknown or revoked; the cache follows. */
  async #fresh(id: string): Promise<GatewayRow | undefined> {
    if (!ID_RE.test(id)) return undefined;
    const row = await this.storage.getGateway(id);
    if (!row || row.secretHash === REVOKED_SECRET_HASH) {
      this.#gateways.delete(id);
      return undefined;
    }
    this.#gateways.set(id, row);
    return row;
  }

  /** Re-reads every gateway into the cache (revoked ones leave it): the embedded ingress's credential check. */
  async refresh(): Promise<void> {
    const rows = await this.storage.allGateways();
    const live = new Map(rows.filter((r) => r.secretHash !== REVOKED_SECRET_HASH).map((r) => [r.id, r]));
    for (const id of this.#gateways.keys()) if (!live.has(id)) this.#gateways.delete(id);
    for (const [id, row] of live) this.#gateways.set(id, row);
  }

  /**
   * Whether a login this registry answered (`authenticate`) still holds as of the cache: the
   * gateway is neither revoked nor gone, and its secret is the one it logged in with.
   */
  stillValid(login: GatewayInfo): boolean {
    const row = this.#gateways.get(login.id);
    // authenticate answers with the stored row itself, so its hash is the one the login was checked against.
    return row !== undefined && row.secretHash === (login as GatewayRow).secretHash;
  }

  /** Warms the cache (at start). */
  async load(): Promise<number> {
    const rows = await this.storage.allGateways();
    for (const r of rows) this.#gateways.set(r.id, r);
    return rows.length;
  }
}
