import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { BusClient, type CommandType, type Logger, type ServiceName, type Transport } from '@tu/shared';
import { CLIENT_ID_SEPARATOR, derivePassword, observerUsername } from './broker/credentials.js';
import { agentVersion } from './release/layout.js';

export interface BusIdentity {
  gatewayId: string;
  secret: string;
  transport: Transport;
  logger: Logger;
  maxPayloadBytes: number;
}

/**
 * A unique instance id for a service process (also its MQTT client id): the service name,
 * then `:` and a suffix, the form the broker lets this login use (broker/credentials.ts).
 */
export const instanceIdFor = (service: string): string =>
  `${service}${CLIENT_ID_SEPARATOR}${os.hostname().replace(/[^A-Za-z0-9_-]/g, '').slice(0, 32)}.${process.pid}.${randomBytes(3).toString('hex')}`;

/** The client id of an observer connection: its username, optionally with a `:` suffix. */
export const observerClientId = (name: string, suffix?: string): string =>
  suffix === undefined ? observerUsername(name) : `${observerUsername(name)}${CLIENT_ID_SEPARATOR}${suffix}`;

/** Connects a service to the gateway bus with its derived credentials. */
export function connectService(id: BusIdentity, service: ServiceName, opts: { handles?: CommandType[]; instanceId?: string } = {}): Promise<BusClient> {
  return BusClient.connect({
    gatewayId: id.gatewayId,
    service,
    instanceId: opts.instanceId ?? instanceIdFor(service),
    username: service,
    password: derivePassword(id.secret, service),
    transport: id.transport,
    logger: id.logger,
    maxPayloadBytes: id.maxPayloadBytes,
    // In its presence: health shows which release each service process runs (it may lag an update).
    version: agentVersion(),
    ...(opts.handles ? { handles: opts.handles } : {}),
  });
}

/** Connects an observer (UI feed, uplink, tools): subscribes to events, publishes nothing. */
export function connectObserver(id: BusIdentity, name: string, instanceId = observerClientId(name, String(process.pid))): Promise<BusClient> {
  const username = observerUsername(name);
  return BusClient.connect({
    gatewayId: id.gatewayId,
    service: 'svc-analysis-orchestrator', // required by the client type; observers never publish
    instanceId,
    username,
    password: derivePassword(id.secret, username),
    transport: id.transport,
    logger: id.logger,
    maxPayloadBytes: id.maxPayloadBytes,
    observer: true,
  });
}
