import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAgentConfig, type AgentConfig } from '@tu/firmware-config';
import {
  BusClient,
  serveStep,
  silentLogger,
  STEPS,
  type AnyEvent,
  type Clock,
  type EventType,
  type Logger,
  type StepCommand,
  type StepName,
  type StepResult,
} from '@tu/shared';
import { connectService, derivePassword, observerUsername, startAgent, type Agent } from '@tu/agent';
import { comparisonResult, metadataResult, recognitionResult } from './fixtures.js';

export const tmpDir = (prefix = 'tu-test-'): string => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

export function testConfig(overrides: Record<string, unknown> = {}, dataDir = tmpDir()): AgentConfig {
  return loadAgentConfig({
    env: {},
    overrides: {
      gatewayId: 'gw-test',
      dataDir,
      'broker.port': 0,
      'bus.secret': 'test-secret-test-secret-test-secret-0123',
      'orchestrator.durability': 'normal',
      'http.port': 0,
      'http.host': '127.0.0.1',
      // Orchestrator tests bring their own handlers; service tests turn the real ones on.
      'services.vision': false,
      'services.comparison': false,
      'services.metadata': false,
      ...overrides,
    },
  });
}

export async function startTestAgent(opts: { config?: AgentConfig; clock?: Clock; logger?: Logger; random?: () => number } = {}): Promise<Agent> {
  return startAgent(opts.config ?? testConfig(), {
    logger: opts.logger ?? silentLogger(),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.random ? { random: opts.random } : {}),
  });
}

export const defaultResults: { [S in StepName]: () => StepResult<S> } = {
  recognition: recognitionResult,
  comparison: comparisonResult,
  metadata: metadataResult,
};

export type StepBehaviour<S extends StepName> = (cmd: StepCommand<S>) => Promise<StepResult<S>>;

/** A handler instance for one step, answering with `behaviour` (default: at once, with a fixture). */
export async function startHandler<S extends StepName>(agent: Agent, step: S, behaviour?: StepBehaviour<S>, instanceId?: string): Promise<BusClient> {
  const service = STEPS[step].service;
  const bus = await connectService(agent.busIdentity, service, { handles: [STEPS[step].command], ...(instanceId ? { instanceId } : {}) });
  await serveStep(bus, step, behaviour ?? (async () => defaultResults[step]() as StepResult<S>));
  await bus.markReady();
  return bus;
}

export async function startAllHandlers(agent: Agent): Promise<BusClient[]> {
  return Promise.all([startHandler(agent, 'recognition'), startHandler(agent, 'comparison'), startHandler(agent, 'metadata')]);
}

export function intake(agent: Agent): Promise<BusClient> {
  return connectService(agent.busIdentity, 'intake');
}

/** An observer (like the UI or the uplink): may only subscribe to events. */
export async function observer(agent: Agent, name = 'test'): Promise<{ bus: BusClient; events: AnyEvent[]; waitFor: (pred: (e: AnyEvent[]) => boolean, ms?: number) => Promise<void> }> {
  const bus = await BusClient.connect({
    gatewayId: agent.config.gatewayId,
    service: 'svc-analysis-orchestrator', // source name is irrelevant: observers never publish
    instanceId: `${observerUsername(name)}:${Math.random().toString(36).slice(2, 8)}`,
    username: observerUsername(name),
    password: derivePassword(agent.busIdentity.secret, observerUsername(name)),
    transport: agent.busIdentity.transport,
    logger: agent.busIdentity.logger,
  });
  const events: AnyEvent[] = [];
  await bus.onEvents('all', (e) => {
    events.push(e);
  });
  return { bus, events, waitFor: (pred, ms = 5000) => until(() => pred(events), ms) };
}

export async function until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Lets in-flight bus traffic settle (in-process broker; a few event-loop turns). */
export const settle = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const ofType = <T extends EventType>(events: AnyEvent[], type: T, analysisId?: string): AnyEvent[] =>
  events.filter((e) => e.type === type && (!analysisId || e.subject === analysisId));
