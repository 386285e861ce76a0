import type { FastifyInstance } from 'fastify';
import { Exposition, type Sample } from '@tu/shared';
import type { AppDeps } from '../sources.js';

export function metricsText(deps: AppDeps): string {
  const o = deps.orchestrator.stats;
  const bus = deps.orchestratorBus.stats;
  const b = deps.broker.stats;
  const byCode = (r: Record<string, number>): Sample[] => Object.entries(r).map(([code, n]) => [{ code }, n]);
  const u = deps.uplink();
  const up = u.state === 'disabled' ? undefined : u;
  const st = deps.storage?.();
  const states = ['disabled', 'connecting', 'online', 'offline'] as const;
  return new Exposition()
    .metric('tu_analyses_received_total', 'counter', 'Upload events received by the orchestrator.', o.received)
    .metric('tu_analyses_started_total', 'counter', 'Analyses started.', o.started)
    .metric('tu_analyses_completed_total', 'counter', 'Analyses completed.', o.completed)
    .metric('tu_analyses_failed_total', 'counter', 'Analyses failed.', o.failed)
    .metric('tu_step_retries_total', 'counter', 'Step attempts retried.', o.retries)
    .metric('tu_step_timeouts_total', 'counter', 'Step attempts that timed out.', o.timeouts)
    .metric('tu_analyses_running', 'gauge', 'Analyses in flight.', o.running)
    .metric('tu_queue_depth', 'gauge', 'Analyses waiting in the orchestrator queue.', o.queued)
    .metric('tu_store_commits_total', 'counter', 'State store commits.', deps.store.stats.commits)
    .metric('tu_store_persist_errors_total', 'counter', 'Failed state persists.', o.persistErrors)
    .metric('tu_orchestrator_end_errors_total', 'counter', 'Analyses that could not be ended (their terminal event could not be built); they stay open until a restart.', o.endErrors)
    .metric('tu_bus_rejected_total', 'counter', 'Inbound messages rejected by the orchestrator bus client, by code.', byCode(bus.rejectedByCode))
    .metric('tu_bus_published_total', 'counter', 'Messages published by the orchestrator.', bus.published)
    .metric('tu_broker_clients', 'gauge', 'Connected MQTT clients.', b.clients)
    .metric('tu_broker_refused_total', 'counter', 'Broker refusals, by kind.', [
      [{ kind: 'connect' }, b.refusedConnects],
      [{ kind: 'publish' }, b.refusedPublishes],
      [{ kind: 'subscribe' }, b.refusedSubscribes],
      [{ kind: 'oversize' }, b.admission.refusedOversize],
      [{ kind: 'connect_rate' }, b.admission.refusedRate],
      [{ kind: 'pending_connects' }, b.admission.refusedPending],
      [{ kind: 'login_throttled' }, b.logins.throttled],
    ])
    .metric('tu_uploads_accepted_total', 'counter', 'Images accepted (202).', deps.intake.stats.accepted)
    .metric('tu_uploads_rejected_total', 'counter', 'Requests refused, by error code.', byCode(deps.intake.stats.rejected))
    .metric('tu_intake_unacknowledged', 'gauge', 'Accepted uploads not yet acknowledged by the orchestrator.', deps.intake.pending())
    .metric('tu_uplink_state', 'gauge', 'Uplink state (1 for the current one).', states.map((st): Sample => [{ state: st }, u.state === st ? 1 : 0]))
    .metric('tu_uplink_queue_depth', 'gauge', 'Events in the uplink outbox not yet acknowledged by the relay.', up?.queueDepth ?? 0)
    .metric('tu_uplink_queue_bytes', 'gauge', 'Payload bytes in the uplink outbox.', up?.queueBytes ?? 0)
    .metric('tu_uplink_oldest_age_seconds', 'gauge', 'Age of the oldest undelivered event (0 when empty).', (up?.oldestUndeliveredAgeMs ?? 0) / 1000)
    .metric('tu_uplink_delivered_total', 'counter', 'Events acknowledged by the relay (PUBACK).', up?.delivered ?? 0)
    .metric('tu_uplink_dropped_total', 'counter', 'Undelivered events lost, by reason (full: drop-oldest policy; expired: older than maxAgeMs).', [
      [{ reason: 'full' }, up?.dropped ?? 0],
      [{ reason: 'expired' }, up?.expired ?? 0],
    ])
    .metric('tu_uplink_refused_total', 'counter', 'New events not queued because the outbox was full (refuse-new policy).', up?.refused ?? 0)
    .metric('tu_uplink_set_aside_total', 'counter', 'Events set aside in the outbox instead of sent, as larger than the relay takes (uplink.maxEventBytes or the limit the relay stated).', up?.undeliverable.total ?? 0)
    .metric('tu_uplink_set_aside_events', 'gauge', 'Events set aside as too large and still kept in the outbox (sent by themselves once the limit allows them).', up?.undeliverable.events ?? 0)
    .metric('tu_uplink_set_aside_bytes', 'gauge', 'Payload bytes of the events set aside and still kept.', up?.undeliverable.bytes ?? 0)
    .metric('tu_uplink_max_event_bytes', 'gauge', 'The largest event the uplink sends now (the smaller of uplink.maxEventBytes and the limit the relay stated).', up?.maxEventBytes.inForce ?? 0)
    .metric('tu_uplink_last_delivery_timestamp_seconds', 'gauge', 'Unix time of the last acknowledged delivery (0: none yet).', up?.lastDeliveryAt ? Date.parse(up.lastDeliveryAt) / 1000 : 0)
    .metric('tu_storage_full', 'gauge', 'Whether new uploads are refused because dataDir is full or failing (1) or not (0).', st ? (st.state === 'full' ? 1 : 0) : 0)
    .metric('tu_storage_free_bytes', 'gauge', 'Free bytes of the filesystem holding dataDir.', st?.freeBytes ?? 0)
    .metric('tu_storage_write_errors_total', 'counter', 'Writes to dataDir that failed on a full or failing disk.', st?.writeErrors ?? 0)
    .metric('tu_storage_quota_bytes', 'gauge', 'storage.maxBytes: the quota of photos and comparison history.', st?.quota.maxBytes ?? 0)
    .metric('tu_storage_quota_used_bytes', 'gauge', 'Bytes of photos and comparison history counted against the quota, by kind.', [
      [{ kind: 'blobs' }, st?.quota.blobBytes ?? 0],
      [{ kind: 'history' }, st?.quota.historyBytes ?? 0],
    ])
    .metric('tu_storage_evicted_total', 'counter', 'Photos and history entries evicted by the quota (oldest delivered first).', [
      [{ kind: 'blobs' }, st?.quota.evictedBlobs ?? 0],
      [{ kind: 'history' }, st?.quota.evictedHistory ?? 0],
    ])
    .metric('tu_storage_evicted_bytes_total', 'counter', 'Bytes of photos evicted by the quota.', st?.quota.evictedBytes ?? 0)
    .metric('process_resident_memory_bytes', 'gauge', 'Resident set size.', process.memoryUsage.rss())
    .toString();
}

/** GET /metrics (Prometheus text). */
export function metricsRoute(app: FastifyInstance, deps: AppDeps): void {
  app.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(metricsText(deps)));
}
