import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../deps.js';
import { Exposition } from '@tu/shared';

export function metricsText(deps: AppDeps): string {
  const i = deps.ingest.stats;
  const q = deps.queue.stats;
  const ing = deps.ingress();
  const l = deps.registry.loginStats;
  const w = deps.queue.health();
  return new Exposition()
    .metric('tu_relay_events_received_total', 'counter', 'Event publishes received from gateways.', i.received)
    .metric('tu_relay_events_ingested_total', 'counter', 'Events accepted (valid, new) and fanned out.', i.accepted)
    .metric('tu_relay_events_rejected_total', 'counter', 'Events rejected, by reason (error code).', Object.entries(i.rejected).map(([code, n]) => [{ code }, n ?? 0]))
    .metric('tu_relay_events_duplicate_total', 'counter', 'Duplicate events dropped, by where they were caught.', [
      [{ stage: 'memory' }, i.duplicates],
      [{ stage: 'shared' }, i.sharedDuplicates],
      [{ stage: 'storage' }, q.duplicates],
    ])
    .metric('tu_relay_shared_dedup_errors_total', 'counter', 'Events fanned out unchecked because the shared duplicate window (redis) did not answer.', i.sharedErrors)
    .metric('tu_relay_fanout_errors_total', 'counter', 'Events stored but not fanned out because the publish to redis failed (redis.url; subscribers on every instance missed them).', i.fanoutErrors)
    .metric('tu_relay_events_stored_total', 'counter', 'Events written to storage.', q.stored)
    .metric('tu_relay_machine_upserts_total', 'counter', 'Machine records upserted.', q.upserts)
    .metric('tu_relay_analyses_written_total', 'counter', 'Analyses written.', q.analyses)
    .metric('tu_relay_storage_queue_depth', 'gauge', 'Jobs and presence updates waiting for storage.', deps.queue.depth)
    .metric('tu_relay_storage_presence_pending', 'gauge', 'Gateway presence updates waiting for storage (at most one per gateway, the latest).', w.presencePending)
    .metric('tu_relay_storage_pushes_waiting', 'gauge', 'Events waiting for room in the full storage queue (storage.queueMax).', w.pushesWaiting)
    .metric('tu_relay_storage_batches_total', 'counter', 'Storage batches committed, one transaction each (events stored ÷ batches = the batch size).', q.batches)
    .metric('tu_relay_storage_errors_total', 'counter', 'Failed storage batches (retried).', q.errors)
    .metric('tu_relay_subscribers', 'gauge', 'Active GraphQL subscriptions.', deps.subscriptions.active)
    .metric('tu_relay_subscription_connections', 'gauge', 'Open graphql-ws connections.', deps.subscriptions.connections)
    .metric('tu_relay_gateways_online', 'gauge', 'Gateways connected (as seen by this instance).', deps.presence.onlineCount)
    .metric('tu_relay_ingress_refused_total', 'counter', 'Ingress refusals, by kind.', [
      [{ kind: 'connect' }, ing?.refusedConnects ?? 0],
      [{ kind: 'publish' }, ing?.refusedPublishes ?? 0],
      [{ kind: 'subscribe' }, ing?.refusedSubscribes ?? 0],
      [{ kind: 'oversize' }, ing?.admission?.refusedOversize ?? 0],
      [{ kind: 'connect_rate' }, ing?.admission?.refusedRate ?? 0],
      [{ kind: 'pending_connects' }, ing?.admission?.refusedPending ?? 0],
      [{ kind: 'login_throttled' }, ing?.logins?.throttled ?? 0],
      [{ kind: 'revoked_open' }, ing?.closedRevoked ?? 0],
    ])
    .metric('tu_relay_ingress_connects_waiting', 'gauge', 'New gateway connections waiting their turn (ingress.limits.connectsPerSecond).', ing?.pacing?.waiting ?? 0)
    .metric('tu_relay_ingress_connects_paced_total', 'counter', 'New gateway connections that had to wait their turn.', ing?.pacing?.paced ?? 0)
    .metric('tu_relay_ingress_connects_cut_waiting_total', 'counter', 'New gateway connections closed without their turn, by why: the queue was full, or they waited too long.', [
      [{ why: 'full' }, ing?.pacing?.refusedFull ?? 0],
      [{ why: 'expired' }, ing?.pacing?.expired ?? 0],
    ])
    .metric('tu_relay_gateway_logins_total', 'counter', 'Gateway logins checked, by how: scrypt (the costly check; refused ones included), memory (verified here before), shared (verified by another instance, redis).', [
      [{ verified_by: 'scrypt' }, l.scrypt],
      [{ verified_by: 'memory' }, l.memory],
      [{ verified_by: 'shared' }, l.shared],
    ])
    .metric('tu_relay_gateway_logins_refused_total', 'counter', 'Gateway logins whose secret scrypt refused (wrong secret, or revoked).', l.refused)
    .metric('process_resident_memory_bytes', 'gauge', 'Resident set size.', process.memoryUsage.rss())
    .toString();
}

export function metricsRoute(app: FastifyInstance, deps: AppDeps): void {
  app.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(metricsText(deps)));
}
