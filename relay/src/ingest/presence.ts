import type { StorageQueue } from './storage-queue.js';

/**
 * Gateway online/offline from the ingress: connection counts (embedded broker) or the retained
 * status topic and last will (external broker). Kept in memory for this instance and written to
 * storage (gateways.online/last_seen) through the storage queue.
 */
export class Presence {
  #connections = new Map<string, number>();
  #lastSeen = new Map<string, string>();
  /** `authoritative`: this instance sees every gateway connection (embedded ingress), so unseen = offline. */
  constructor(
    private readonly queue: StorageQueue,
    private readonly opts: { authoritative: boolean; now?: () => Date },
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

  /** Online as seen by this instance; undefined when this instance has not seen the gateway. */
  online(gatewayId: string): boolean | undefined {
    if (this.#connections.has(gatewayId)) return true;
    return this.opts.authoritative || this.#lastSeen.has(gatewayId) ? false : undefined;
  }

  lastSeen(gatewayId: string): string | undefined {
    return this.#lastSeen.get(gatewayId);
  }

  get onlineCount(): number {
    return this.#connections.size;
  }

  #write(gatewayId: string, online: boolean): void {
    const at = (this.opts.now?.() ?? new Date()).toISOString();
    this.#lastSeen.set(gatewayId, at);
    void this.queue.push({ kind: 'presence', gatewayId, online, at });
  }
}
