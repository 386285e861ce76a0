import type { FastifyInstance } from 'fastify';
import { STEPS } from '@tu/shared';
import type { AppDeps } from '../sources.js';
import { agentVersion } from '../../release/layout.js';
import { hasRole } from '../auth/access.js';
import { describeSetAside } from '../../fs/set-aside.js';

/** A bus client off the bus this long makes the agent degraded (a reconnect takes well under a second). */
export const BUS_OFFLINE_DEGRADED_MS = 5_000;
/** This many lost connections of one client within BUS_DROP_WINDOW_MS make it degraded too. */
export const BUS_DROPS_DEGRADED = 3;
export const BUS_DROP_WINDOW_MS = 60_000;

export function healthView(deps: AppDeps) {
  const instances = deps.orchestrator.instances();
  // The services of the steps the plan runs (a catalogue step outside the plan is nobody's concern).
  const services = Object.fromEntries(
    deps.plan.map(({ step, optional }) => {
      const def = STEPS[step];
      const live = instances.filter((i) => i.handles.includes(def.command));
      const inProcess = step === 'recognition' ? deps.servicesInProcess.vision : step === 'comparison' || step === 'metadata' ? deps.servicesInProcess[step] : false;
      return [def.service, { step, optional, inProcess, up: live.length > 0, instances: live.map((i) => ({ instanceId: i.instanceId, inflight: i.inflight, version: i.version })) }];
    }),
  );
  const info = deps.recognizerInfo();
  const problem = deps.visionProblem?.() ?? null;
  const model = info
    ? {
        state: 'loaded' as const,
        id: info.model.id,
        version: info.model.version,
        backend: info.model.backend,
        kind: info.model.kind,
        embeddingDim: info.model.embeddingDim,
        head: info.model.head,
        // The head in use is the shipped one refitted to this many technician examples (teach/refitter.ts).
        refit: deps.refit(),
        // Why the technicians' labels are not in the head (teach/refitter.ts problem); null: nothing wrong.
        refitError: deps.refitProblem?.() ?? null,
        thread: info.thread,
        loadMs: info.loadMs,
      }
    : { state: deps.servicesInProcess.vision ? ('not-loaded' as const) : ('out-of-process' as const), ...(problem ? { error: { code: problem.code, message: problem.message } } : {}) };
  const brokerUp = deps.orchestratorBus.connected;
  // Why the status is 'degraded', one sentence each (shown to the technician by the UI).
  const reasons: string[] = [];
  if (!brokerUp) reasons.push('message broker down: analyses cannot run');
  for (const [name, s] of Object.entries(services)) {
    if (!s.up) reasons.push(s.optional ? `${name} not running: analyses complete without the optional ${s.step} step` : `${name} not running: analyses fail at the ${s.step} step`);
  }
  // A client that keeps losing its connection looks up at most instants, yet misses messages.
  const now = Date.now();
  const buses = Object.fromEntries(Object.entries(deps.buses()).map(([role, bus]) => [role, bus.connectionHealth(now, BUS_DROP_WINDOW_MS)]));
  for (const [role, b] of Object.entries(buses)) {
    if (b.offlineMs >= BUS_OFFLINE_DEGRADED_MS) reasons.push(`${role} has been off the local bus for ${Math.round(b.offlineMs / 1000)} s: its messages are not flowing`);
    else if (b.drops >= BUS_DROPS_DEGRADED) reasons.push(`${role} lost its local bus connection ${b.drops} times in the last minute: messages may be missed (is another client using its client id, or is the broker overloaded?)`);
  }
  // The vision service is up on the bus yet answers every photo with this (vision/keeper.ts retries the start).
  if (problem) reasons.push(`photos are not recognised (${problem.code}): ${problem.message}`);
  const refitError = info ? deps.refitProblem?.() : undefined;
  if (refitError) reasons.push(`the technicians' labels are not in the machine-type head: its refit failed (${refitError.code}): ${refitError.message}`);
  if (info && !info.model.head) {
    reasons.push(
      'no machine-type head installed: machine types cannot be recognised (only forklift, crane and tractor are guessed from ImageNet; everything else is reported as unknown). Install the default head (npm run build:head) or train one (npm run train-head)',
    );
  }
  const storage = deps.storage?.();
  if (storage?.reason) reasons.push(storage.reason);
  else if (storage?.stateStore) reasons.push(`the analysis state store cannot write (${storage.stateStore}): analyses wait until it can`);
  if (storage?.quota.blocked) reasons.push(storage.quota.blocked);
  // Until the next start: the technician should know that, say, reference photos were lost.
  for (const s of storage?.setAside ?? []) reasons.push(describeSetAside(s));
  // Events the relay would refuse (too large), kept on the gateway instead of blocking the rest (uplink/undeliverable.ts).
  const uplink = deps.uplink();
  if (uplink.state !== 'disabled' && uplink.undeliverable.reason) reasons.push(uplink.undeliverable.reason);
  // Results lost on their way to the office right now: not "ok", whatever else works.
  if (uplink.state !== 'disabled' && uplink.full)
    reasons.push(
      uplink.whenFull === 'drop-oldest'
        ? `the uplink outbox is full (the relay has not taken its events): the oldest waiting events are dropped for new ones and never reach the office (${uplink.dropped} so far)`
        : `the uplink outbox is full (the relay has not taken its events): new events are refused and never reach the office (${uplink.refused} so far)`,
    );
  return {
    status: reasons.length === 0 ? 'ok' : 'degraded',
    reasons,
    gatewayId: deps.gatewayId,
    agent: { version: agentVersion() },
    uptimeS: Math.round(deps.uptimeMs() / 1000),
    broker: {
      up: brokerUp,
      clients: deps.broker.stats.clients,
      address: deps.broker.address ?? null,
      refused: { connects: deps.broker.stats.refusedConnects, publishes: deps.broker.stats.refusedPublishes, subscribes: deps.broker.stats.refusedSubscribes },
    },
    services,
    buses,
    model,
    orchestrator: { running: deps.orchestrator.stats.running, queued: deps.orchestrator.stats.queued },
    intake: { unacknowledged: deps.intake.pending() },
    uplink,
    ...(storage
      ? {
          storage: {
            state: storage.state,
            ...(storage.since ? { since: storage.since, where: storage.where } : {}),
            freeBytes: storage.freeBytes ?? null,
            totalBytes: storage.totalBytes ?? null,
            minFreeBytes: storage.minFreeBytes,
            writeErrors: storage.writeErrors,
            retrying: { stateStore: storage.stateStore ?? null, outbox: storage.outbox ?? null },
            // Photos + comparison history against storage.maxBytes, and what eviction took so far.
            quota: storage.quota,
            setAside: storage.setAside,
          },
        }
      : {}),
  };
}

/**
 * What anyone on the network may know: whether the gateway is ok, which gateway and version
 * it is (`tu-agent update` waits on these). The reasons, services, model, bus and uplink
 * (addresses, queue sizes) are for signed-in technicians only.
 */
export function publicHealthView(deps: AppDeps) {
  const full = healthView(deps);
  return {
    status: full.status,
    gatewayId: full.gatewayId,
    agent: full.agent,
    uptimeS: full.uptimeS,
    // "to see why" of an ok gateway asked a question nobody had.
    detail:
      full.status === 'ok'
        ? 'Sign in with a technician token (view role) to see the services, model, bus and uplink.'
        : 'Sign in with a technician token (view role) to see why, and the services, model, bus and uplink.',
  };
}

/** GET /api/v1/health: open; the full view (broker, services, model, uplink) to a token with the view role. */
export function healthRoute(app: FastifyInstance, deps: AppDeps): void {
  app.get('/api/v1/health', async (req) => (hasRole(req, 'view') ? healthView(deps) : publicHealthView(deps)));
}
