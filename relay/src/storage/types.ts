/** Rows and the one storage interface the relay uses; SQLite and PostgreSQL implement it. */

export interface TenantRow {
  id: string;
  name: string | null;
  createdAt: string;
}

export interface GatewayRow {
  id: string;
  tenantId: string;
  name: string | null;
  secretHash: string;
  online: boolean;
  lastSeen: string | null;
  createdAt: string;
}

export interface GeoPosition {
  latitude: number;
  longitude: number;
  altitude?: number;
}

export interface MachineRow {
  id: string;
  tenantId: string;
  gatewayId: string;
  type: string | null;
  brand: string | null;
  model: string | null;
  serialNumber: string | null;
  name: string | null;
  /** The id the technician registered the machine under on the gateway (PUT /api/v1/machine). */
  registeredId: string | null;
  lastSeen: string | null;
  lastPosition: GeoPosition | null;
  latestThumbnail: string | null;
  /** What the latest photo's recognition said: evidence, never the machine's type. */
  lastRecognition: MachineRecognition | null;
  /** The gateway's type check of the latest photo: false = recognition disagrees with the registered type; null = not judged. */
  typeMatch: boolean | null;
  /** Which time `lastSeen` is (null: stored before the relay kept it). */
  lastSeenSource: LastSeenSource | null;
  /** Why the photo's own time was not used for `lastSeen` (null: it was, or there was none). */
  lastSeenNote: string | null;
}

/**
 * Which time a machine's lastSeen is (relay/src/ingest/effects.ts decides):
 * - `capture-time`: the photo's EXIF capture time, judged plausible by the gateway and the relay;
 * - `capture-time-latest`: the latest instant an EXIF capture time without a zone can be (read at
 *   UTC-12), for a photo taken more than a day before its upload (agent/src/services/metadata/sort.ts);
 * - `upload-time`: when the gateway received the photo (no usable capture time, or an implausible one);
 * - `completed-time`: when the gateway finished the analysis (its record carried no time);
 * - `gateway`: the gateway's record time, from a gateway that does not say which time it is;
 * - `relay-receipt`: when the relay received the event, because the gateway's times were later than that.
 */
export type LastSeenSource = 'capture-time' | 'capture-time-latest' | 'upload-time' | 'completed-time' | 'gateway' | 'relay-receipt';

export interface MachineRecognition {
  machineType: string;
  confidence: number;
  analysisId: string;
}

export type AnalysisStatus = 'running' | 'completed' | 'failed';

export interface AnalysisRow {
  id: string;
  tenantId: string;
  gatewayId: string;
  machineId: string;
  status: AnalysisStatus;
  steps: unknown;
  results: unknown;
  failure: unknown;
  startedAt: string | null;
  endedAt: string | null;
  /** Sort key: endedAt, else startedAt (ISO, UTC). */
  sortTime: string;
}

/** What makes an event the same event: its id within its gateway's events (migration 008). */
export interface EventKey {
  gatewayId: string;
  id: string;
}

/** An accepted event as stored (the dedup record). */
export interface StoredEvent {
  id: string;
  tenantId: string;
  gatewayId: string;
  type: string;
  subject: string;
  time: string;
  receivedAt: string;
  data: unknown;
}

/** Machine fields an event sets; null/undefined leaves the stored value. `seenAt` orders updates. */
export interface MachineUpsert {
  id: string;
  tenantId: string;
  gatewayId: string;
  type?: string | null;
  brand?: string | null;
  model?: string | null;
  serialNumber?: string | null;
  name?: string | null;
  registeredId?: string | null;
  /**
   * The event carries the gateway's whole registration (type..registeredId): when it is newer than
   * what is stored, it replaces those fields, absent ones included; otherwise they only fill gaps.
   */
  registration?: boolean;
  /** When set, lastSeen/lastPosition/latestThumbnail/recognition/typeMatch move only if this is newer than what is stored. */
  seenAt?: string | null;
  /** Which time `seenAt` is, and why the photo's own time was refused (stored with lastSeen). */
  seenSource?: LastSeenSource;
  seenNote?: string | null;
  lastPosition?: GeoPosition | null;
  thumbnail?: string | null;
  recognition?: MachineRecognition | null;
  typeMatch?: boolean | null;
}

/** A technician's label of a recognised photo (`recognition.labelled`), as the relay keeps it. */
export interface LabelledExampleRow {
  /** The correction id (idempotency key). */
  id: string;
  tenantId: string;
  gatewayId: string;
  analysisId: string;
  machineId: string | null;
  sha256: string;
  embedding: number[];
  label: string;
  previousLabel: string;
  kind: 'confirmation' | 'correction';
  by: string;
  at: string;
  modelId: string;
  modelVersion: string;
  headId: string | null;
  receivedAt: string;
}

/**
 * Real-world accuracy of one machine type as judged by technicians, over the newest label of
 * each labelled analysis: `confirmed` = the gateway said this type and the technician agreed;
 * `correctedAway` = the gateway said this type, the technician chose another; `correctedTo` =
 * the gateway said another type (or unknown), the technician chose this one.
 */
export interface TypeAccuracyRow {
  machineType: string;
  confirmed: number;
  correctedAway: number;
  correctedTo: number;
  /** confirmed / (confirmed + correctedAway); null without any such label. */
  accuracy: number | null;
}

export interface ExampleFilter extends PageArgs {
  tenantId: string;
  gatewayId?: string | undefined;
}

/** What one event does to the machine storage beyond being recorded. */
export interface EventEffects {
  machine?: MachineUpsert;
  /** recognition.labelled: the labelled example (ignored when its correction id is stored already). */
  labelled?: LabelledExampleRow;
  /** `insert-only` (analysis.started: never overwrite a finished analysis) or `upsert`. */
  analysis?: { row: AnalysisRow; mode: 'insert-only' | 'upsert' };
}

export interface Page<T> {
  items: T[];
  hasNextPage: boolean;
}

export interface PageArgs {
  first: number;
  /** Opaque keyset cursor from a previous page (see cursor.ts). */
  after?: string | undefined;
}

export interface MachineFilter extends PageArgs {
  tenantId: string;
  gatewayId?: string | undefined;
  type?: string | undefined;
  search?: string | undefined;
  ids?: string[] | undefined;
}

export interface AnalysisFilter extends PageArgs {
  tenantId: string;
  gatewayId?: string | undefined;
  machineId?: string | undefined;
  status?: AnalysisStatus | undefined;
}

export interface EventFilter {
  tenantId: string;
  gatewayId?: string | undefined;
  limit: number;
}

export interface GatewayFilter extends PageArgs {
  tenantId: string;
  search?: string | undefined;
}

/** A gateway's presence as of `at` (ISO time). */
export interface PresenceUpdate {
  id: string;
  online: boolean;
  at: string;
}

export interface Storage {
  readonly kind: 'sqlite' | 'postgres';
  /** Applied migration versions, in order. */
  migrations(): Promise<number[]>;
  ping(): Promise<boolean>;

  addTenant(t: { id: string; name?: string | null }): Promise<void>;
  listTenants(): Promise<TenantRow[]>;
  addGateway(g: { id: string; tenantId: string; name?: string | null; secretHash: string }): Promise<void>;
  getGateway(id: string): Promise<GatewayRow | undefined>;
  listGateways(f: GatewayFilter): Promise<Page<GatewayRow>>;
  allGateways(): Promise<GatewayRow[]>;
  /**
   * Replaces the gateway's secret hash (revocation: a hash no secret verifies against); false when
   * unknown, or with `ifHash` when the stored hash is no longer that one (another command changed it meanwhile).
   */
  setGatewaySecretHash(id: string, secretHash: string, opts?: { ifHash?: string }): Promise<boolean>;
  /**
   * Online/offline and last seen of many gateways in one statement; an update older than what
   * is stored (by `at`) changes nothing. At most one update per gateway (the caller keeps the latest).
   */
  setGatewayPresences(updates: readonly PresenceUpdate[]): Promise<void>;

  /**
   * Records a batch of events in one transaction; each event's effects are applied only when
   * its id is new for its gateway (ids are the gateway's choice: another gateway's event of the
   * same id is a different event). Returns, per event, whether it was stored or a duplicate.
   */
  recordEvents(batch: { event: StoredEvent; effects: EventEffects }[]): Promise<('stored' | 'duplicate')[]>;
  /** The newest stored events' keys, oldest of them first: what primes the duplicate window after a restart. */
  recentEventIds(limit: number): Promise<EventKey[]>;
  /** The tenant's (or one gateway's) newest events, newest first. */
  listEvents(f: EventFilter): Promise<StoredEvent[]>;
  countEvents(f?: { gatewayId?: string }): Promise<number>;

  getMachine(tenantId: string, id: string): Promise<MachineRow | undefined>;
  listMachines(f: MachineFilter): Promise<Page<MachineRow>>;
  getAnalysis(tenantId: string, id: string): Promise<AnalysisRow | undefined>;
  listAnalyses(f: AnalysisFilter): Promise<Page<AnalysisRow>>;

  /** The photo embedding of an analysis's recognition (stored apart from the analysis row the dashboard reads). */
  analysisEmbedding(tenantId: string, analysisId: string): Promise<number[] | undefined>;
  /** Deletes up to `limit` of the oldest events received before `before` (ISO time); resolves how many. */
  deleteEventsBefore(before: string, limit: number): Promise<number>;

  /** Per machine type, over the tenant's (or one gateway's) newest label per analysis; sorted by type. */
  typeAccuracy(f: { tenantId: string; gatewayId?: string | undefined }): Promise<TypeAccuracyRow[]>;
  /** The tenant's current labelled examples (newest label per analysis), oldest first (at, id). */
  listLabelledExamples(f: ExampleFilter): Promise<Page<LabelledExampleRow>>;

  close(): Promise<void>;
}
