import type { StorageQueue } from './storage-queue.js';

/** How often an event's "last seen" is written to storage per gateway, at most (default). */
export const LAST_SEEN_PERSIST_MS = 30_000;

/**
 * Gateway online/offline from the ingress: connection counts (embedded broker) or the retained
 * status topic and last will (external broker). Kept in memory for this instance and written to
 * storage (gateways.online/last_seen) through the storage queue.
 *
 * "Last seen" also moves on every accepted event (`seen`): in memory each time (GraphQL reads it
 * from here first), in storage at most once per `persistEveryMs` per gateway, so a busy gateway
 * costs no database write per event.
 */
export class Presence {
  #connections = new Map<string, number>();
  /** Gateways whose connection or status this instance has seen (so it can say "offline"). */
  #statusKnown = new Set<string>();
  #lastSeen = new Map<string, string>();
  /** When each gateway's presence was last queued for storage (ms, injected clock). */
  #persistedAt = new Map<string, number>();
  /** `authoritative`: this instance sees every gateway connection (embedded ingress), so unseen = offline. */
  constructor(
    private readonly queue: StorageQueue,
    private readonly opts: { authoritative: boolean; now?: () => Date; persistEveryMs?: number },
  ) {}

  connected(gatewayId: string): void {
    const n = (this.#connections.get(gatewayId) ?? 0) + 1;
    this.#connections.set(gatewayId, n);
    if (n === 1) this.#write(gatewayId, true);
  }

  disconnected(gatewayId: string): void {
    const n = (this.#connections.get(gatewayId) ?? 1) - 1;
    if (n <= 0) {
      this.#connections.delete(gatewayId);
      this.#write(gatewayId, false);
    } else this.#connections.set(gatewayId, n);
  }

  /** External mode: the status a gateway (or its last will) published. */
  status(gatewayId: string, online: boolean): void {
    if (online) this.#connections.set(gatewayId, 1);
    else this.#connections.delete(gatewayId);
    this.#write(gatewayId, online);
  }

  /** An accepted event from the gateway: it is alive now. */
  seen(gatewayId: string): void {
    const now = this.#now();
    this.#lastSeen.set(gatewayId, now.toISOString());
    const last = this.#persistedAt.get(gatewayId);
    if (last !== undefined && now.getTime() - last < (this.opts.persistEveryMs ?? LAST_SEEN_PERSIST_MS)) return;
    this.#persistedAt.set(gatewayId, now.getTime());
    // It just sent an event, so it is online (the at-guard in storage keeps a later disconnect).
    void this.queue.push({ kind: 'presence', gatewayId, online: true, at: now.toISOString() });
  }

  /** Online as seen by this instance; undefined when this instance has not seen the gateway's connection or status. */
  online(gatewayId: string): boolean | undefined {
    if (this.#connections.has(gatewayId)) return true;
    return this.opts.authoritative || this.#statusKnown.has(gatewayId) ? false : undefined;
  }

  lastSeen(gatewayId: string): string | undefined {
    return this.#lastSeen.get(gatewayId);
  }

  get onlineCount(): number {
    return this.#connections.size;
  }

  #now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  #write(gatewayId: string, online: boolean): void {
    const now = this.#now();
    const at = now.toISOString();
    this.#statusKnown.add(gatewayId);
    this.#lastSeen.set(gatewayId, at);
    this.#persistedAt.set(gatewayId, now.getTime());
    void this.queue.push({ kind: 'presence', gatewayId, online, at });
  }
}
