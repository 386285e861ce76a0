import type { FastifyInstance } from 'fastify';
import { STEPS, type StepName } from '@tu/shared';
import type { AppDeps } from '../sources.js';
import { agentVersion } from '../../release/layout.js';

export function healthView(deps: AppDeps) {
  const instances = deps.orchestrator.instances();
  const services = Object.fromEntries(
    (Object.keys(STEPS) as StepName[]).map((step) => {
      const def = STEPS[step];
      const live = instances.filter((i) => i.handles.includes(def.command));
      const inProcess = deps.servicesInProcess[step === 'recognition' ? 'vision' : step];
      return [def.service, { step, inProcess, up: live.length > 0, instances: live.map((i) => ({ instanceId: i.instanceId, inflight: i.inflight })) }];
    }),
  );
  const info = deps.recognizerInfo();
  const model = info
    ? {
        state: 'loaded' as const,
        id: info.model.id,
        version: info.model.version,
        backend: info.model.backend,
        kind: info.model.kind,
        embeddingDim: info.model.embeddingDim,
        head: info.model.head,
        thread: info.thread,
        loadMs: info.loadMs,
      }
    : { state: deps.servicesInProcess.vision ? ('not-loaded' as const) : ('out-of-process' as const) };
  const brokerUp = deps.orchestratorBus.connected;
  const allUp = Object.values(services).every((s) => s.up);
  return {
    status: brokerUp && allUp ? 'ok' : 'degraded',
    gatewayId: deps.gatewayId,
    agent: { version: agentVersion() },
    uptimeS: Math.round((Date.now() - deps.startedAt) / 1000),
    broker: {
      up: brokerUp,
      clients: deps.broker.stats.clients,
      address: deps.broker.address ?? null,
      refused: { connects: deps.broker.stats.refusedConnects, publishes: deps.broker.stats.refusedPublishes, subscribes: deps.broker.stats.refusedSubscribes },
    },
    services,
    model,
    orchestrator: { running: deps.orchestrator.stats.running, queued: deps.orchestrator.stats.queued },
    intake: { unacknowledged: deps.intake.pending() },
    uplink: deps.uplink(),
  };
}

/** GET /api/v1/health: broker, services (live instances), model state, uplink. */
export function healthRoute(app: FastifyInstance, deps: AppDeps): void {
  app.get('/api/v1/health', async () => healthView(deps));
}
