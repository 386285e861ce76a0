import { TuError } from '@tu/shared';
import { ID_RE } from '../config.js';
import type { GatewayRow, Storage } from '../storage/types.js';
import { generateSecret, hashSecret, REVOKED_SECRET_HASH, VerifiedCache, type LoginStats, type SharedVerifiedLogins } from './secrets.js';

/** A new gateway secret (shown once) and the scrypt hash stored for it. */
export interface GatewayCredential {
  secret: string;
  secretHash: string;
}

const newCredential = async (secret = generateSecret()): Promise<GatewayCredential> => ({ secret, secretHash: await hashSecret(secret) });

/** Whether the row is a revoked gateway's (its hash is the marker no secret verifies against). */
export const isRevoked = (row: Pick<GatewayRow, 'secretHash'>): boolean => row.secretHash === REVOKED_SECRET_HASH;

export interface GatewayInfo {
  id: string;
  tenantId: string;
  name: string | null;
  /** Revoked (`gateways revoke`): still its tenant's (its events stay), but nothing it sends is taken. */
  revoked: boolean;
}

/** A stored row as the cache keeps it: revoked or not, said once here rather than by each reader. */
type CachedGateway = GatewayRow & { revoked: boolean };
const cachedRow = (row: GatewayRow): CachedGateway => ({ ...row, revoked: isRevoked(row) });

/**
 * Tenants and gateways (with scrypt-hashed secrets), kept in the relay storage. Gateways are
 * cached in memory once seen (ingress and tenant checks are on the hot path); a miss reads storage.
 * Revoked gateways are cached too, marked `revoked`, by every read (`load`, `gateway`, `refresh`,
 * logins): the ingest pipeline refuses their events from the cache (relay/src/ingest/pipeline.ts),
 * and a tenant still reads their history (GraphQL checks the tenant through `gateway`).
 */
export class Registry {
  #gateways = new Map<string, CachedGateway>();
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
    return (await this.createGateway(id, tenantId, opts)).secret;
  }

  /** `addGateway`, answering the stored scrypt hash too (`gateways add --print-hash`, for a registry file). */
  async createGateway(id: string, tenantId: string, opts: { name?: string; secret?: string } = {}): Promise<GatewayCredential> {
    if (!ID_RE.test(id)) throw new TuError('INVALID_REQUEST', 'gateway id: 1-64 characters A-Z a-z 0-9 _ -');
    const existing = await this.storage.getGateway(id);
    if (existing) {
      throw new TuError(
        'REGISTRY_CONFLICT',
        isRevoked(existing)
          ? `gateway ${id} exists and is revoked: re-enable it with a new secret by \`npm run relay -- gateways restore ${id}\``
          : `gateway ${id} already exists (tenant ${existing.tenantId}); give it a new secret with \`npm run relay -- gateways rotate ${id}\``,
      );
    }
    const cred = await newCredential(opts.secret);
    await this.storage.addGateway({ id, tenantId, name: opts.name ?? null, secretHash: cred.secretHash });
    return cred;
  }

  /**
   * Gives an active gateway a new secret: its old secret is refused from the moment the row is
   * written, as a revocation is (every login reads the row; open connections are closed by the
   * instances' credential check, `refresh`/`stillValid`). A revoked gateway is refused: revocation
   * is undone only on purpose (`restore`).
   */
  async rotate(id: string): Promise<GatewayCredential> {
    return this.#replaceSecret(id, 'active');
  }

  /** Re-enables a revoked gateway with a new secret (its old one stays refused); an active one is refused (`rotate`). */
  async restore(id: string): Promise<GatewayCredential> {
    return this.#replaceSecret(id, 'revoked');
  }

  async #replaceSecret(id: string, expect: 'active' | 'revoked'): Promise<GatewayCredential> {
    const row = ID_RE.test(id) ? await this.storage.getGateway(id) : undefined;
    if (!row) throw new TuError('UNKNOWN_GATEWAY', `no gateway ${id} is registered; add it with \`npm run relay -- gateways add ${id} --tenant <t>\``);
    if (expect === 'active' && isRevoked(row)) throw new TuError('REGISTRY_CONFLICT', `gateway ${id} is revoked; to let it in again with a new secret: \`npm run relay -- gateways restore ${id}\``);
    if (expect === 'revoked' && !isRevoked(row)) throw new TuError('REGISTRY_CONFLICT', `gateway ${id} is not revoked; to give it a new secret: \`npm run relay -- gateways rotate ${id}\``);
    const cred = await newCredential();
    // Only over the hash read above: a revoke (or rotate) by another command meanwhile wins, not this one.
    if (!(await this.storage.setGatewaySecretHash(id, cred.secretHash, { ifHash: row.secretHash }))) {
      throw new TuError('REGISTRY_CONFLICT', `gateway ${id} was changed by another command meanwhile (revoked, rotated or removed); nothing was changed by this one: list it (\`gateways list\`) and run the command again`);
    }
    this.#gateways.delete(id);
    return cred;
  }

  /** The gateway's state as storage has it now (no cache): `gateways list`, technician tokens. */
  async state(id: string): Promise<'active' | 'revoked' | undefined> {
    const row = ID_RE.test(id) ? await this.storage.getGateway(id) : undefined;
    return row ? (isRevoked(row) ? 'revoked' : 'active') : undefined;
  }

  /** The gateway, from cache or storage (undefined when unknown). */
  async gateway(id: string): Promise<GatewayInfo | undefined> {
    const cached = this.#gateways.get(id);
    if (cached) return cached;
    if (!ID_RE.test(id)) return undefined;
    const row = await this.storage.getGateway(id);
    if (!row) return undefined;
    const entry = cachedRow(row);
    this.#gateways.set(id, entry);
    return entry;
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
    let row: CachedGateway | undefined;
    try {
      row = await this.#fresh(id);
    } catch (err) {
      row = this.#gateways.get(id);
      if (!row) throw err;
      // A revoked row's hash (REVOKED_SECRET_HASH) verifies no secret anyway; said outright here.
      if (row.revoked) return undefined;
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

  /** The gateway as storage has it now, unless unknown or revoked; the cache follows (a revoked one marked). */
  async #fresh(id: string): Promise<CachedGateway | undefined> {
    if (!ID_RE.test(id)) return undefined;
    const row = await this.storage.getGateway(id);
    if (!row) {
      this.#gateways.delete(id);
      return undefined;
    }
    const entry = cachedRow(row);
    this.#gateways.set(id, entry);
    return entry.revoked ? undefined : entry;
  }

  /**
   * Re-reads every gateway into the cache (revoked ones marked, removed ones gone): the brokers'
   * credential check (relay/src/registry/refresh.ts).
   */
  async refresh(): Promise<void> {
    const rows = new Map((await this.storage.allGateways()).map((r) => [r.id, cachedRow(r)]));
    for (const id of this.#gateways.keys()) if (!rows.has(id)) this.#gateways.delete(id);
    for (const [id, row] of rows) this.#gateways.set(id, row);
  }

  /**
   * Whether a login this registry answered (`authenticate`) still holds as of the cache: the
   * gateway is neither revoked nor gone, and its secret is the one it logged in with.
   */
  stillValid(login: GatewayInfo): boolean {
    const row = this.#gateways.get(login.id);
    // authenticate answers with the cached row itself, so its hash is the one the login was checked against.
    return row !== undefined && !row.revoked && row.secretHash === (login as CachedGateway).secretHash;
  }

  /** Warms the cache (at start; revoked gateways marked, as `refresh` does). */
  async load(): Promise<number> {
    const rows = await this.storage.allGateways();
    for (const r of rows) this.#gateways.set(r.id, cachedRow(r));
    return rows.length;
  }
}
