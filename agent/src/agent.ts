import path from 'node:path';
import type { AgentConfig } from '@tu/firmware-config';
import { systemClock, type BusClient, type Clock, type Logger } from '@tu/shared';
import { startBroker, type Broker } from './broker/broker.js';
import { resolveBusSecret } from './broker/credentials.js';
import { connectService, type BusIdentity } from './bus.js';
import { createOrchestrator, type Orchestrator } from './orchestrator/orchestrator.js';
import { openStateStore, type StateStore } from './orchestrator/store.js';

export interface Agent {
  readonly config: AgentConfig;
  readonly broker: Broker;
  readonly orchestrator: Orchestrator;
  readonly store: StateStore;
  /** The orchestrator's bus client (its counters feed health and metrics). */
  readonly orchestratorBus: BusClient;
  /** Bus identity for in-process services (in-process transport, derived credentials). */
  readonly busIdentity: BusIdentity;
  stop(): Promise<void>;
}

export interface AgentDeps {
  logger: Logger;
  clock?: Clock;
  random?: () => number;
}

/** Starts the gateway agent: broker (TCP + in-process), durable state store, orchestrator. */
export async function startAgent(config: AgentConfig, deps: AgentDeps): Promise<Agent> {
  const log = deps.logger;
  const dataDir = path.resolve(config.dataDir);
  const secret = resolveBusSecret({ ...config.bus, dataDir });
  const broker = await startBroker({
    gatewayId: config.gatewayId,
    secret,
    logger: log,
    tcp: { host: config.broker.host, port: config.broker.port },
    maxPayloadBytes: config.broker.maxPayloadBytes,
  });
  const busIdentity: BusIdentity = {
    gatewayId: config.gatewayId,
    secret,
    transport: { kind: 'stream', open: () => broker.connectInProcess() },
    logger: log,
    maxPayloadBytes: config.broker.maxPayloadBytes,
  };
  const store = await openStateStore({ file: path.join(dataDir, 'orchestrator.sqlite'), durability: config.orchestrator.durability });
  let orchBus: BusClient | undefined;
  try {
    orchBus = await connectService(busIdentity, 'svc-analysis-orchestrator', { instanceId: 'svc-analysis-orchestrator' });
    const orchestrator = createOrchestrator({
      bus: orchBus,
      store,
      config: config.orchestrator,
      logger: log,
      clock: deps.clock ?? systemClock,
      ...(deps.random ? { random: deps.random } : {}),
    });
    await orchestrator.start();
    const bus = orchBus;
    return {
      config,
      broker,
      orchestrator,
      store,
      orchestratorBus: bus,
      busIdentity,
      async stop() {
        await orchestrator.stop();
        await bus.close();
        await store.close();
        await broker.close();
      },
    };
  } catch (err) {
    await orchBus?.close();
    await store.close();
    await broker.close();
    throw err;
  }
}
