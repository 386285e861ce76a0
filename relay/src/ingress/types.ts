import type { AdmissionStats } from '@tu/shared';

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
}

export interface Ingress {
  readonly stats: IngressStats;
  /** Where gateways connect (embedded: the TCP listener; external: the broker URL). */
  readonly url: string;
  close(): Promise<void>;
}
