/** A gateway's presence as the relay instances share it (absent fields: nothing recorded). */
export interface SharedPresenceEntry {
  online?: boolean;
  /** ISO time. */
  lastSeen?: string;
}

/**
 * Presence that every relay instance reads and writes. Behind a clustered broker any instance
 * may receive a gateway's status or its events (DESIGN §6), so no instance's memory is the
 * truth. Implemented on Redis (redis-state.ts); without Redis the one instance's memory is
 * (presence.ts).
 */
export interface SharedPresence {
  /**
   * Online/offline as of `atMs` (the time of the status), unless a newer status is recorded; last
   * seen moves to at least `atMs`. `held`: this instance holds the gateway's connection (embedded
   * broker), so the status lasts only as long as this instance lives; a status from an external
   * broker (the broker publishes the last will) does not depend on the instance.
   */
  status(gatewayId: string, online: boolean, atMs: number, held: boolean): Promise<void>;
  /** An accepted event at `atMs`: last seen moves to at least `atMs` (never back). */
  seen(gatewayId: string, atMs: number): Promise<void>;
  read(gatewayIds: readonly string[]): Promise<Map<string, SharedPresenceEntry>>;
}

/** The duplicate window shared by the instances (see Ingest in pipeline.ts for why there are two). */
export interface SharedRecentIds {
  /** True for the first instance to claim this gateway's event id within the window; false for every later claim. */
  claim(gatewayId: string, eventId: string): Promise<boolean>;
}
