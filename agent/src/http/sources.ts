import type { BusClient } from '@tu/shared';
import type { PlanStep } from '@tu/firmware-config';
import type { Broker } from '../broker/broker.js';
import type { EventFeed } from './event-feed.js';
import type { TokenVerifier } from './auth/tokens.js';
import type { DeviceState } from '../device/state.js';
import type { ReferenceRegistrar } from '../device/reference-registrar.js';
import type { Intake } from '../intake/intake.js';
import type { IntakeLimits } from '../intake/validate.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { StateStore } from '../orchestrator/store.js';
import type { RecognizerInfo } from '../services/vision/types.js';
import type { Teacher } from '../teach/teacher.js';
import type { RefitProblem, RefitState } from '../teach/refitter.js';
import type { UplinkHealth } from '../uplink/uplink.js';
import type { StorageStatus } from '../fs/storage-guard.js';
import type { SetAside } from '../fs/set-aside.js';
import type { QuotaStatus } from '../blobs/quota.js';

export type StorageHealth = StorageStatus & {
  quota: QuotaStatus;
  /** The write error a store waits to retry (undefined: its writes go through). */
  stateStore: string | undefined;
  outbox: string | undefined;
  /** Data files found damaged at start and moved aside (fs/set-aside.ts). */
  setAside: readonly SetAside[];
};

/** Everything the HTTP API reads from or acts on (injected: buildApp has no globals). */
export interface AppDeps {
  gatewayId: string;
  /** Verifies technician tokens (auth/tokens.ts); every API route but health needs one (auth/access.ts). */
  tokens: TokenVerifier;
  limits: IntakeLimits;
  intake: Intake;
  orchestrator: Orchestrator;
  store: StateStore;
  device: DeviceState;
  references: ReferenceRegistrar;
  /** Technicians' labels (confirm / correct a recognised machine type). */
  teacher: Teacher;
  /** The last refit of the head to the technicians' examples (null: none yet). */
  refit: () => RefitState | null;
  /** Why the last refit failed (null: it did not): the technicians' labels are not in the head. */
  refitProblem?: () => RefitProblem | null;
  broker: Broker;
  orchestratorBus: BusClient;
  /** The agent's own bus clients by role (orchestrator, intake, uplink, ui, the in-process services): health watches their connections. */
  buses: () => Record<string, BusClient>;
  /** Uplink state, queue and losses (health + metrics). */
  uplink: () => UplinkHealth;
  /** Model info of the in-process recognizer, undefined when vision runs elsewhere. */
  recognizerInfo: () => RecognizerInfo | undefined;
  /** Why the in-process vision service recognises no photos (its worker could not be started; retried), null when it does. */
  visionProblem?: () => { code: string; message: string } | null;
  /** Data directory: full-disk state (fs/storage-guard.ts), quota (blobs/quota.ts), stores retrying a write. Absent in apps built without storage. */
  storage?: () => StorageHealth;
  /** Which services run inside this process. */
  servicesInProcess: { vision: boolean; comparison: boolean; metadata: boolean };
  /** The analysis plan the orchestrator runs (health reports its steps' services). */
  plan: readonly PlanStep[];
  /** The photo's thumbnail (base64) from the blob store: the status route puts it into `image` (the bus carries none, docs/messages.md). */
  thumbnailOf?: (sha256: string) => Promise<string | undefined>;
  /** Live events for the WebSocket feed (an observer bus client); absent: /api/v1/events closes with 1013. */
  events?: EventFeed;
  /** Per-client WebSocket send buffer limit before the client is dropped (default 1 MiB). */
  eventsMaxBufferedBytes?: number;
  /** Directory of the built technician UI (default agent/ui/dist). */
  uiDir?: string;
  /**
   * Milliseconds since the agent started, on the monotonic clock: the wall clock of a gateway
   * booted offline is set by NTP later, by years, and "up 56 years" (or a negative uptime) was
   * what health said then.
   */
  uptimeMs: () => number;
}
