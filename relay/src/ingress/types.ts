import type { AdmissionStats, LoginThrottle } from '@tu/shared';
import type { ConnectPacerStats } from './connect-pacer.js';

/** RabbitMQ ingress (relay/src/ingress/rabbitmq.ts): what this instance took from the shared queue. */
export interface RabbitmqIngressStats {
  /** The node this instance consumes through (undefined before the first connection). */
  url: string | undefined;
  delivered: number;
  /** Events stored (or found a duplicate), then acknowledged. */
  acked: number;
  /** Gateway status messages (online/offline) passed to presence and acknowledged. */
  statuses: number;
  /** Bad input, refused: dead-lettered to `{queue}.dead`. */
  deadLettered: number;
  /** Handling failed: requeued after a delay. */
  requeued: number;
  /** Of the dead-lettered: from an unknown or revoked gateway. */
  revoked: number;
  reconnects: number;
  /**
   * Whether this instance has declared the gateway queue and bound it to amq.topic (since it
   * started, or since the broker last cancelled its consumer because the queue was deleted). Until
   * then the broker auth routes refuse gateway logins (relay/src/http/routes/broker-auth.ts): with
   * no queue bound, amq.topic drops a gateway's publish and the MQTT plugin still acknowledges it.
   */
  queueDeclared: boolean;
  /** Times the broker cancelled this instance's consumer (its queue deleted): each time the ingress reconnects and declares it again. */
  consumerCancels: number;
  /** The queue exists with other arguments than configured (deliveryLimit changed): consumed as it is; what to do about it. */
  queueSettingsIgnored?: string;
  /** Why the last attempt to connect to a node failed (cleared once connected): what /api/v1/health shows while not ready. */
  lastConnectError?: string;
  /** Open connections of revoked gateways closed through the management API (ingress.rabbitmq.management). */
  closedConnections: number;
  /** Attempts to close them that failed (logged with the reason). */
  closeFailures: number;
}

export interface IngressStats {
  mode: 'embedded' | 'external' | 'rabbitmq';
  /** External, RabbitMQ: connected to the broker. Embedded: always true while running. */
  connected: boolean;
  clients: number;
  refusedConnects: number;
  refusedPublishes: number;
  refusedSubscribes: number;
  /** Embedded only: connections cut before authentication (packet size, rate, pending connects). */
  admission?: AdmissionStats;
  /** Embedded only: failed logins, and logins refused unchecked after too many failures. */
  logins?: LoginThrottle['stats'];
  /** Embedded only: open connections closed because their gateway was revoked or given a new secret. */
  closedRevoked?: number;
  /** Embedded only: connections waiting their turn (ingress.limits.connectsPerSecond). */
  pacing?: ConnectPacerStats;
  rabbitmq?: RabbitmqIngressStats;
  /** External only: events tried again because storing them failed (relay/src/ingress/external.ts `store`). */
  storeRetries?: number;
}

export interface Ingress {
  readonly stats: IngressStats;
  /** Where gateways connect (embedded: the TCP listener; external: the broker URL). */
  readonly url: string;
  close(): Promise<void>;
}
