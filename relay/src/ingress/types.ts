import type { AdmissionStats, LoginThrottle } from '@tu/shared';

export interface IngressStats {
  mode: 'embedded' | 'external';
  /** External: connected to the broker. Embedded: always true while running. */
  connected: boolean;
  clients: number;
  refusedConnects: number;
  refusedPublishes: number;
  refusedSubscribes: number;
  /** Embedded only: connections cut before authentication (packet size, rate, pending connects). */
  admission?: AdmissionStats;
  /** Embedded only: failed logins, and logins refused unchecked after too many failures. */
  logins?: LoginThrottle['stats'];
}

export interface Ingress {
  readonly stats: IngressStats;
  /** Where gateways connect (embedded: the TCP listener; external: the broker URL). */
  readonly url: string;
  close(): Promise<void>;
}
