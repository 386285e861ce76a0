import net from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import mqtt, { MqttClient } from 'mqtt';
import pg from 'pg';
import { Redis } from 'ioredis';
import { createClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { catalog, gatewayStatusPayload, gatewayTopics, silentLogger, topics, type Clock, type EventType, type InputOf, type StepSummary } from '@tu/shared';
import { issueToken, loadRelayConfig, startRelay, type Relay, type RelayConfig, type StorageWrapper } from '@tu/relay';
import { comparisonResult, imageRef, metadataResult, newAnalysisId, recognitionResult } from './fixtures.js';
import { tmpDir, until } from './harness.js';

/** The default plan as analysis.started carries it (firmware-config/src/schema.ts DEFAULT_PLAN). */
const PLAN = [
  { step: 'recognition' as const, needs: [], optional: false },
  { step: 'comparison' as const, needs: ['recognition' as const], optional: false },
  { step: 'metadata' as const, needs: [], optional: false },
];
import type { AnalysisEventPayload } from '@tu/relay/internal/ingest/fanout';

export const JWT_SECRET = 'relay-test-secret-relay-test-secret';
export const PG_BASE = process.env.TU_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const pgSchemaName = (): string => `tu_test_${randomBytes(6).toString('hex')}`;
export async function dropPgSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_BASE });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end();
  }
}

/** Deletes every Redis key under `prefix` (SCAN, so Redis is never blocked by one big command): a test's or bench run's keys. */
export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export function relayTestConfig(overrides: Record<string, unknown> = {}): RelayConfig {
  return loadRelayConfig({
    env: {},
    overrides: { dataDir: tmpDir('tu-relay-'), 'log.level': 'silent', 'http.host': '127.0.0.1', 'http.port': 0, 'ingress.host': '127.0.0.1', 'ingress.port': 0, 'jwt.secret': JWT_SECRET, ...overrides },
  });
}

export async function startTestRelay(opts: { overrides?: Record<string, unknown>; wrapStorage?: StorageWrapper; clock?: Clock } = {}): Promise<Relay> {
  return startRelay(relayTestConfig(opts.overrides), { logger: silentLogger(), ...(opts.wrapStorage ? { wrapStorage: opts.wrapStorage } : {}), ...(opts.clock ? { clock: opts.clock } : {}) });
}

/** Registers tenant (if new) and gateway; returns the gateway secret. */
export async function addGateway(relay: Relay, id: string, tenant: string): Promise<string> {
  if (!(await relay.storage.listTenants()).some((t) => t.id === tenant)) await relay.registry.addTenant(tenant);
  return relay.registry.addGateway(id, tenant, { name: `Gateway ${id}` });
}

export const tokenFor = (tenant: string, sub = 'test-user'): Promise<string> => issueToken({ secret: JWT_SECRET }, { sub, tenant });

export interface Envelope {
  specversion: '1.0';
  id: string;
  source: string;
  type: EventType;
  time: string;
  subject: string;
  datacontenttype: 'application/json';
  data: unknown;
}

export function envelope<T extends EventType>(gatewayId: string, type: T, data: InputOf<T>, opts: { id?: string; time?: string } = {}): Envelope {
  const d = data as { analysisId?: string };
  return {
    specversion: '1.0',
    id: opts.id ?? randomUUID(),
    source: `/gateways/${gatewayId}/${catalog[type].producer}`,
    type,
    time: opts.time ?? new Date().toISOString(),
    subject: d.analysisId ?? 'n/a-subject',
    datacontenttype: 'application/json',
    data,
  };
}

const stepOutcome = (analysisId: string) => ({ analysisId, attempt: 1, commandId: randomUUID(), instance: 'i-1', durationMs: 5 });

/** The machine registered on the gateway (PUT /api/v1/machine), as the metadata service copies it into its record. */
export interface RegisteredFixture {
  id?: string;
  name?: string;
  type?: string;
  brand?: string;
  model?: string;
  serialNumber?: string;
}

/**
 * The events a gateway forwards for one analysis, in order (completed, or failed at recognition).
 * `registered`: the gateway's registered machine (default: an excavator; null = nothing registered,
 * so the record's type is the recognised one, typeSource 'recognition'); `recognised`: what the
 * photo was recognised as (default excavator 0.91). The comparison's type check follows from both
 * with the agent's rule (agent/src/services/comparison/verdict.ts, min confidence 0.6).
 * A failed analysis's summary says what became of the other steps: comparison (it needs
 * recognition) skipped, metadata (beside it) cancelled; `olderGateway` sends them as gateways
 * before those statuses did, pending and running (shared/src/step-status.ts).
 */
export function analysisFlow(
  gatewayId: string,
  opts: { outcome?: 'completed' | 'failed'; olderGateway?: boolean; machineId?: string; at?: Date; brand?: string; thumbnail?: string; registered?: RegisteredFixture | null; recognised?: { machineType: string; confidence: number } } = {},
): Envelope[] {
  const analysisId = newAnalysisId();
  const at = opts.at ?? new Date();
  const t = (ms: number) => new Date(at.getTime() + ms).toISOString();
  const image = { ...imageRef(analysisId), ...(opts.thumbnail ? { thumbnail: opts.thumbnail } : {}) };
  const mid = opts.machineId ? { machineId: opts.machineId } : {};
  const steps = [{ step: 'recognition' as const, status: 'completed' as const, attempts: 1 }];
  const started = envelope(gatewayId, 'analysis.started', { analysisId, ...mid, image, steps: ['recognition', 'comparison', 'metadata'], plan: PLAN, startedAt: t(0), queuedMs: 0 }, { time: t(0) });
  if (opts.outcome === 'failed') {
    const reason = { code: 'MODEL_NOT_LOADED', message: 'no model', retryable: false };
    const steps: StepSummary[] = [
      { step: 'recognition', status: 'failed', attempts: 1, startedAt: t(0), endedAt: t(5), error: reason },
      { step: 'comparison', status: opts.olderGateway ? 'pending' : 'skipped', attempts: 0 },
      { step: 'metadata', status: opts.olderGateway ? 'running' : 'cancelled', attempts: 1, startedAt: t(0), ...(opts.olderGateway ? {} : { endedAt: t(6) }) },
    ];
    return [
      started,
      envelope(gatewayId, 'recognition.failed', { ...stepOutcome(analysisId), error: reason }, { time: t(5) }),
      envelope(gatewayId, 'analysis.failed', { analysisId, ...mid, image, failedAt: t(6), failedStep: 'recognition', reason, steps, results: {} }, { time: t(6) }),
    ];
  }
  const recognition = { ...recognitionResult(), ...(opts.recognised ?? {}) };
  const registered = opts.registered === undefined ? { type: 'excavator' } : opts.registered;
  const { type: _fixtureType, ...base } = metadataResult().record;
  const confident = recognition.machineType !== 'unknown' && recognition.confidence >= 0.6;
  const metadata = metadataResult();
  metadata.record = {
    ...base,
    ...(registered?.id ? { machineId: registered.id } : {}),
    ...(registered?.name ? { name: registered.name } : {}),
    ...(registered?.type ? { type: registered.type, typeSource: 'registered' as const } : confident ? { type: recognition.machineType, typeSource: 'recognition' as const } : {}),
    ...(registered?.brand ? { brand: registered.brand } : {}),
    ...(registered?.model ? { model: registered.model } : {}),
    ...(registered?.serialNumber ? { serialNumber: registered.serialNumber } : {}),
    ...(opts.brand ? { brand: opts.brand } : {}),
    lastSeenAt: t(0),
  };
  const comparison = comparisonResult();
  const registeredType = registered?.type ?? null;
  comparison.typeCheck = { registeredType, recognizedType: recognition.machineType, match: registeredType && confident ? registeredType === recognition.machineType : null };
  return [
    started,
    envelope(gatewayId, 'recognition.completed', { ...stepOutcome(analysisId), result: recognition }, { time: t(1) }),
    envelope(gatewayId, 'comparison.completed', { ...stepOutcome(analysisId), result: comparison }, { time: t(2) }),
    envelope(gatewayId, 'metadata.sorted', { ...stepOutcome(analysisId), result: metadata }, { time: t(3) }),
    envelope(
      gatewayId,
      'analysis.completed',
      { analysisId, ...mid, image, uploadedAt: t(0), startedAt: t(0), completedAt: t(4), durationMs: 4, steps, results: { recognition, comparison, metadata } },
      { time: t(4) },
    ),
  ];
}

/** A gateway's MQTT connection to the relay (TCP_NODELAY; status online + last will offline). */
export async function connectGateway(url: string, gatewayId: string, secret: string, opts: { clientId?: string } = {}): Promise<MqttClient> {
  const u = new URL(url);
  const options = {
    protocolVersion: 4 as const,
    clientId: opts.clientId ?? gatewayId,
    username: gatewayId,
    password: secret,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    will: { topic: gatewayTopics.status(gatewayId), payload: Buffer.from(gatewayStatusPayload(false)), qos: 1 as const, retain: true },
  };
  const c =
    u.protocol === 'mqtt:'
      ? new MqttClient(() => net.connect({ host: u.hostname, port: Number(u.port), noDelay: true }), options)
      : mqtt.connect(url, options);
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', (err) => {
      c.end(true);
      reject(err);
    });
  });
  await c.publishAsync(gatewayTopics.status(gatewayId), gatewayStatusPayload(true), { qos: 1, retain: true });
  return c;
}

/** QoS 1 publish of an event: 'ok' on PUBACK, 'refused' when the connection is dropped instead. */
export function publishEvent(c: MqttClient, gatewayId: string, e: Envelope | { type: string; [k: string]: unknown }, topic = topics.event(gatewayId, e.type as EventType)): Promise<'ok' | 'refused'> {
  return publishRaw(c, topic, JSON.stringify(e));
}

export function publishRaw(c: MqttClient, topic: string, payload: string | Buffer, retain = false): Promise<'ok' | 'refused'> {
  return new Promise((resolve) => {
    const onClose = () => resolve('refused');
    c.once('close', onClose);
    c.publish(topic, payload, { qos: 1, retain }, (err) => {
      c.off('close', onClose);
      resolve(err ? 'refused' : 'ok');
    });
  });
}

export async function gql<T = Record<string, unknown>>(relay: Relay, token: string | undefined, query: string, variables: Record<string, unknown> = {}): Promise<{ status: number; data?: T; errors?: { message: string; extensions?: { code?: string } }[]; error?: { code: string } }> {
  const res = await relay.app.inject({ method: 'POST', url: '/graphql', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, payload: JSON.stringify({ query, variables }) });
  return { status: res.statusCode, ...(res.json() as object) };
}

/** What a subscriber receives: the relay's own payload type. */
export type Received = AnalysisEventPayload;

/** A graphql-ws client (the dashboard) subscribed to analysisEvents. */
export async function subscribeEvents(relay: Relay, token: string, gatewayId?: string): Promise<{ events: Received[]; errors: unknown[]; client: WsClient; waitFor: (n: number, ms?: number) => Promise<void>; close: () => Promise<void> }> {
  const client = createClient({ url: `${relay.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0, lazy: false });
  const events: Received[] = [];
  const errors: unknown[] = [];
  const total = relay.deps.subscriptions.total;
  client.subscribe<{ analysisEvents: Received }>(
    { query: 'subscription ($gw: ID) { analysisEvents(gatewayId: $gw) { id type analysisId gatewayId time data } }', variables: { gw: gatewayId ?? null } },
    { next: (v) => (v.data ? events.push(v.data.analysisEvents) : errors.push(v.errors)), error: (e) => errors.push(e), complete: () => undefined },
  );
  await until(() => relay.deps.subscriptions.total > total || errors.length > 0, 5000, 'subscription active');
  return {
    events,
    errors,
    client,
    waitFor: (n, ms = 5000) => until(() => events.length >= n, ms, `${n} subscription events (have ${events.length})`),
    close: async () => {
      await client.dispose();
    },
  };
}
