import path from 'node:path';
import type { AgentConfig } from '@tu/firmware-config';
import { TuError, type AnalysisResults, type BusClient, type Clock, type Logger } from '@tu/shared';
import type { BlobStore } from '../blobs/store.js';
import { connectObserver, observerClientId, type BusIdentity } from '../bus.js';
import { createEnricher } from './enrich.js';
import { Forwarder, type UplinkError, type UplinkState } from './forwarder.js';
import { Outbox } from './outbox.js';
import type { WriterThread } from '../sqlite/writer-thread.js';
import { redactUrl, relayTrust, resolveEndpoint, type RelayEndpoint } from './relay-connection.js';
import { describeUndeliverable } from './undeliverable.js';

export const UPLINK_OBSERVER = 'uplink';

export type UplinkHealth =
  | { state: 'disabled'; reason: string }
  | {
      state: UplinkState;
      url: string;
      queueDepth: number;
      queueBytes: number;
      oldestUndeliveredAgeMs: number | null;
      /** How long the relay has not been connected, since the start or the lost connection (null while online). */
      disconnectedMs: number | null;
      lastDeliveryAt: string | null;
      /** delivered … expired and undeliverable.total: as committed to the outbox, so never lower after a crash (Outbox.committedCounters). */
      delivered: number;
      dropped: number;
      refused: number;
      expired: number;
      whenFull: 'drop-oldest' | 'refuse-new';
      full: boolean;
      /** The outbox's bounds as configured (uplink.outbox): what "full" and "expired" mean on this gateway. */
      limits: { maxEvents: number; maxBytes: number; maxAgeMs: number };
      inflight: number;
      lastError: UplinkError | null;
      /** The largest event sent (event-limit.ts): in force now, and what the relay stated (null until it has). */
      maxEventBytes: { inForce: number; relay: number | null };
      /**
       * Events set aside in the outbox as too large for the relay, not sent (outbox.ts `setAside`):
       * kept now (`events`, `bytes`), ever (`total`), the latest, and the sentence health's
       * `reasons` shows while any is kept (null when none).
       */
      undeliverable: { events: number; bytes: number; total: number; latest: { id: string; type: string; bytes: number; reason: string; at: string } | null; reason: string | null };
    };

export interface Uplink {
  readonly enabled: boolean;
  readonly outbox: Outbox | undefined;
  readonly forwarder: Forwarder | undefined;
  /** Its observer client on the local bus (undefined when the uplink is disabled). */
  readonly localBus: BusClient | undefined;
  health(): UplinkHealth;
  /**
   * Resolves true once terminal event `eventId` is on disk in the outbox (Forwarder.terminalOnDisk);
   * the orchestrator keeps the analysis open (re-published at the next start) until then.
   * Undefined when the uplink is disabled: there is nothing to wait for.
   */
  readonly terminalOnDisk: ((eventId: string) => Promise<boolean>) | undefined;
  stop(): Promise<void>;
}

export interface UplinkDeps {
  identity: BusIdentity;
  dataDir: string;
  clock: Clock;
  random: () => number;
  logger: Logger;
  /** The photos' blob store: thumbnails and embeddings the bus only references are put back into events for the relay (enrich.ts). */
  blobs?: BlobStore;
  /** The agent's SQLite writer thread, for the outbox's writes (sqlite/writer-thread.ts). */
  writerThread?: WriterThread;
  /** An analysis's results from the orchestrator's state: terminal events leave the bus without them (enrich.ts). */
  resultsOf?: (analysisId: string) => AnalysisResults | undefined;
  /** The numbers kept with an analysis's label, for a labelled event whose embedding file is gone (enrich.ts). */
  labelledEmbedding?: (analysisId: string, sha256: string) => number[] | undefined;
}

/**
 * Starts the store-and-forward uplink when uplink.url is set: opens the outbox, subscribes
 * an observer to every local event (call this before anything publishes: the orchestrator
 * re-publishes on start the terminal events not yet on disk in the outbox), and connects to the relay in the background.
 * A missing relay, bad credentials or unreadable TLS files never stop the agent: events
 * queue and health/logs say why they are not delivered.
 */
export async function startUplink(config: AgentConfig, deps: UplinkDeps): Promise<Uplink> {
  const c = config.uplink;
  if (!c.url) {
    deps.logger.info('uplink disabled (uplink.url / TU_UPLINK_URL not set)');
    return { enabled: false, outbox: undefined, forwarder: undefined, localBus: undefined, terminalOnDisk: undefined, health: () => ({ state: 'disabled', reason: 'uplink.url is not configured' }), stop: async () => {} };
  }
  const url = c.url;
  let endpoint: RelayEndpoint | undefined;
  let configError: TuError | undefined;
  try {
    endpoint = resolveEndpoint({ ...c, url, gatewayId: config.gatewayId });
    if (endpoint.password === undefined) deps.logger.warn('uplink: no gateway secret (TU_UPLINK_PASSWORD / uplink.passwordFile); connecting without a password');
    const trust = relayTrust(url, c.tls);
    if (trust) deps.logger[c.tls.rejectUnauthorized ? 'info' : 'warn'](`uplink: ${trust}`);
  } catch (err) {
    configError = err instanceof TuError ? err : new TuError('UPLINK_CONFIG_INVALID', (err as Error).message);
  }
  const outbox = await Outbox.open({
    file: path.join(deps.dataDir, 'outbox.sqlite'),
    durability: c.outbox.durability,
    maxEvents: c.outbox.maxEvents,
    maxBytes: c.outbox.maxBytes,
    maxAgeMs: c.outbox.maxAgeMs,
    whenFull: c.outbox.whenFull,
    clock: deps.clock,
    logger: deps.logger,
    ...(deps.writerThread ? { thread: deps.writerThread } : {}),
  });
  // When the outbox last failed a write: health's lastError says when, as it does for the relay's errors.
  let outboxFailedAt: string | undefined;
  outbox.onWriteError(() => (outboxFailedAt = new Date(deps.clock.now()).toISOString()));
  let forwarder: Forwarder;
  let bus: BusClient;
  try {
    bus = await connectObserver(deps.identity, UPLINK_OBSERVER, observerClientId(UPLINK_OBSERVER));
    forwarder = new Forwarder({
      gatewayId: config.gatewayId,
      bus,
      outbox,
      endpoint,
      ...(configError ? { configError } : {}),
      reconnect: c.reconnect,
      inflight: c.inflight,
      maxEventBytes: c.maxEventBytes,
      ...(deps.blobs ? { enrich: createEnricher({ blobs: deps.blobs, logger: deps.logger, ...(deps.resultsOf ? { resultsOf: deps.resultsOf } : {}), ...(deps.labelledEmbedding ? { labelledEmbedding: deps.labelledEmbedding } : {}) }) } : {}),
      clock: deps.clock,
      random: deps.random,
      logger: deps.logger,
    });
    await forwarder.start();
  } catch (err) {
    await outbox.close();
    throw err;
  }
  deps.logger.info({ url: redactUrl(url), username: endpoint?.username, queued: outbox.stats.depth, setAside: outbox.stats.undeliverable, maxEventBytes: c.maxEventBytes, whenFull: c.outbox.whenFull }, 'uplink started');
  return {
    enabled: true,
    outbox,
    forwarder,
    localBus: bus,
    terminalOnDisk: (eventId) => forwarder.terminalOnDisk(eventId),
    health(): UplinkHealth {
      const s = outbox.stats;
      // Counters as committed, never ahead of the disk: they must not go backwards across a crash (Outbox.committedCounters).
      const counted = outbox.committedCounters;
      const l = s.lastUndeliverable;
      const latest = l ? { id: l.id, type: l.type, bytes: l.bytes, reason: l.reason, at: new Date(l.at).toISOString() } : null;
      const limit = forwarder.maxEventBytes;
      const err = forwarder.lastError ?? (outbox.error ? { code: 'UPLINK_OUTBOX_FAILED' as const, message: outbox.error.message, at: outboxFailedAt ?? new Date(deps.clock.now()).toISOString() } : undefined);
      return {
        state: forwarder.state,
        url: redactUrl(url),
        queueDepth: s.depth,
        queueBytes: s.bytes,
        oldestUndeliveredAgeMs: s.oldestAgeMs ?? null,
        disconnectedMs: forwarder.disconnectedMs ?? null,
        lastDeliveryAt: forwarder.lastDeliveryAt === undefined ? null : new Date(forwarder.lastDeliveryAt).toISOString(),
        delivered: counted.delivered,
        dropped: counted.dropped,
        refused: counted.refused,
        expired: counted.expired,
        whenFull: c.outbox.whenFull,
        full: s.full,
        limits: { maxEvents: c.outbox.maxEvents, maxBytes: c.outbox.maxBytes, maxAgeMs: c.outbox.maxAgeMs },
        inflight: forwarder.inflight,
        lastError: err ?? null,
        maxEventBytes: { inForce: limit.inForce, relay: limit.relay ?? null },
        undeliverable: { events: s.undeliverable, bytes: s.undeliverableBytes, total: counted.setAside, latest, reason: s.undeliverable ? describeUndeliverable({ events: s.undeliverable, latest }) : null },
      };
    },
    async stop() {
      await forwarder.stop();
      await outbox.close();
    },
  };
}
