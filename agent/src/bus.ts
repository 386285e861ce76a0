import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { BusClient, type CommandType, type Logger, type ServiceName, type Transport } from '@tu/shared';
import { derivePassword } from './broker/credentials.js';

export interface BusIdentity {
  gatewayId: string;
  secret: string;
  transport: Transport;
  logger: Logger;
  maxPayloadBytes: number;
}

/** A unique instance id for a service process (also its MQTT client id). */
export const instanceIdFor = (service: string): string => `${service}.${os.hostname().replace(/[^A-Za-z0-9_-]/g, '').slice(0, 32)}.${process.pid}.${randomBytes(3).toString('hex')}`;

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
    ...(opts.handles ? { handles: opts.handles } : {}),
  });
}
