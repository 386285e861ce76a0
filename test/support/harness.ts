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
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { ROLES, type Role } from '@tu/shared/internal/technician-roles';
import { connectService, derivePassword, deviceToken, observerUsername, startAgent, type Agent } from '@tu/agent';
import { comparisonResult, metadataResult, nameplateResult, recognitionResult } from './fixtures.js';

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

/**
 * A technician token for the agent, signed with its device key as `tu-agent token` does
 * (agent/src/cli/token.ts): the test holds the data dir. Default: every role.
 */
export function techToken(agent: Pick<Agent, 'config'>, roles: readonly Role[] = ROLES, o: { sub?: string; ttlS?: number } = {}): Promise<string> {
  return deviceToken(agent.config, { roles, sub: o.sub ?? 'test-technician', ...(o.ttlS ? { ttlS: o.ttlS } : {}) });
}

/** `Authorization: Bearer` of an every-role token for an agent run as its own process (its gateway id and data dir). */
export async function bearerFor(gatewayId: string, dataDir: string): Promise<{ authorization: string }> {
  return { authorization: `Bearer ${await deviceToken({ gatewayId, dataDir, auth: { maxTokenTtlS: 7 * 24 * 3600 } }, { sub: 'test-technician' })}` };
}

const allRoles = new WeakMap<object, Promise<string>>();

/** `Authorization: Bearer` of an every-role token for the agent (signed once per agent). */
export async function authHeader(agent: Pick<Agent, 'config'>): Promise<{ authorization: string }> {
  let t = allRoles.get(agent);
  if (!t) allRoles.set(agent, (t = techToken(agent)));
  return { authorization: `Bearer ${await t}` };
}

/** The technician UI's address opened as `npm start` prints it: `/#token=<every-role token>`. */
export async function signedInUrl(agent: Agent, roles: readonly Role[] = ROLES): Promise<string> {
  return `${agent.http.url}/#token=${await techToken(agent, roles)}`;
}

/** agent.http.app.inject as a signed-in technician with every role (explicit headers win). */
export async function inject(agent: Agent, opts: InjectOptions): Promise<LightMyRequestResponse> {
  const headers = { ...(await authHeader(agent)), ...(opts.headers ?? {}) };
  return agent.http.app.inject({ ...opts, headers });
}

export const defaultResults: { [S in StepName]: () => StepResult<S> } = {
  recognition: recognitionResult,
  comparison: comparisonResult,
  metadata: metadataResult,
  nameplate: nameplateResult,
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

/**
 * Handler instances of the default plan's three steps for an agent running in another process
 * (its bus over TCP on 127.0.0.1:`port`, `secret` its bus secret), named `<service>:<suffix>`.
 * Each answers after `before()` (default: at once) with a fixture result; they reconnect by
 * themselves across the agent's restarts (the crash tests kill it).
 */
export async function startProcessHandlers(o: { gatewayId: string; secret: string; port: number; suffix: string; before?: () => Promise<unknown> }): Promise<BusClient[]> {
  const out: BusClient[] = [];
  for (const step of ['recognition', 'comparison', 'metadata'] as StepName[]) {
    const service = STEPS[step].service;
    const bus = await BusClient.connect({
      gatewayId: o.gatewayId,
      service,
      instanceId: `${service}:${o.suffix}`,
      username: service,
      password: derivePassword(o.secret, service),
      transport: { kind: 'tcp', host: '127.0.0.1', port: o.port },
      logger: silentLogger(),
      handles: [STEPS[step].command],
    });
    await serveStep(bus, step, async () => {
      await o.before?.();
      return defaultResults[step]() as never;
    });
    await bus.markReady();
    out.push(bus);
  }
  return out;
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
