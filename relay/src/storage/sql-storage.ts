import { embeddingNumbers, pack, packedEmbedding, TuError, unpack } from '@tu/shared';
import { containsPattern, decodeCursor, encodeCursor } from './cursor.js';
import type { Db, SqlValue } from './db.js';
import { migrate } from './migrate.js';
import type {
  AnalysisFilter,
  AnalysisRow,
  AnalysisStatus,
  EventEffects,
  EventFilter,
  EventKey,
  GatewayFilter,
  GatewayRow,
  ExampleFilter,
  GeoPosition,
  LabelledExampleRow,
  LastSeenSource,
  MachineFilter,
  MachineRow,
  Page,
  PresenceUpdate,
  Storage,
  StoredEvent,
  TenantRow,
  TypeAccuracyRow,
} from './types.js';

interface GatewayRec { id: string; tenant_id: string; name: string | null; secret_hash: string; online: number | string; last_seen: string | null; created_at: string }
interface MachineRec {
  id: string;
  tenant_id: string;
  gateway_id: string;
  type: string | null;
  brand: string | null;
  model: string | null;
  serial_number: string | null;
  name: string | null;
  registered_id: string | null;
  last_seen: string | null;
  last_position: string | null;
  latest_thumbnail: string | null;
  recognised_type: string | null;
  recognised_confidence: number | string | null;
  recognised_analysis_id: string | null;
  type_match: number | string | null;
  last_seen_source: string | null;
  last_seen_note: string | null;
}
interface EventRec { id: string; tenant_id: string; gateway_id: string; type: string; subject: string; time: string; received_at: string; data: string }
interface AnalysisRec { id: string; tenant_id: string; gateway_id: string; machine_id: string; status: string; steps: string | null; results: string | null; failure: string | null; started_at: string | null; ended_at: string | null; sort_time: string }

const json = (v: unknown): string | null => (v === undefined || v === null ? null : JSON.stringify(v));
const parse = (s: string | null): unknown => (s === null ? null : (JSON.parse(s) as unknown));

const toGateway = (r: GatewayRec): GatewayRow => ({ id: r.id, tenantId: r.tenant_id, name: r.name, secretHash: r.secret_hash, online: Number(r.online) === 1, lastSeen: r.last_seen, createdAt: r.created_at });
const toMachine = (r: MachineRec): MachineRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  gatewayId: r.gateway_id,
  type: r.type,
  brand: r.brand,
  model: r.model,
  serialNumber: r.serial_number,
  name: r.name,
  registeredId: r.registered_id,
  lastSeen: r.last_seen,
  lastPosition: parse(r.last_position) as GeoPosition | null,
  latestThumbnail: r.latest_thumbnail,
  lastRecognition:
    r.recognised_type !== null && r.recognised_confidence !== null && r.recognised_analysis_id !== null
      ? { machineType: r.recognised_type, confidence: Number(r.recognised_confidence), analysisId: r.recognised_analysis_id }
      : null,
  typeMatch: r.type_match === null ? null : Number(r.type_match) === 1,
  lastSeenSource: r.last_seen_source as LastSeenSource | null,
  lastSeenNote: r.last_seen_note,
});
const toEvent = (r: EventRec): StoredEvent => ({ id: r.id, tenantId: r.tenant_id, gatewayId: r.gateway_id, type: r.type, subject: r.subject, time: r.time, receivedAt: r.received_at, data: parse(r.data) });
const toAnalysis = (r: AnalysisRec): AnalysisRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  gatewayId: r.gateway_id,
  machineId: r.machine_id,
  status: r.status as AnalysisStatus,
  steps: parse(r.steps),
  results: parse(r.results),
  failure: parse(r.failure),
  startedAt: r.started_at,
  endedAt: r.ended_at,
  sortTime: r.sort_time,
});

interface ExampleRec { id: string; tenant_id: string; gateway_id: string; analysis_id: string; machine_id: string | null; sha256: string; embedding: string; label: string; previous_label: string; kind: string; by_whom: string; at: string; model_id: string; model_version: string; head_id: string | null; received_at: string }
const toExample = (r: ExampleRec): LabelledExampleRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  gatewayId: r.gateway_id,
  analysisId: r.analysis_id,
  machineId: r.machine_id,
  sha256: r.sha256,
  embedding: JSON.parse(r.embedding) as number[],
  label: r.label,
  previousLabel: r.previous_label,
  kind: r.kind === 'confirmation' ? 'confirmation' : 'correction',
  by: r.by_whom,
  at: r.at,
  modelId: r.model_id,
  modelVersion: r.model_version,
  headId: r.head_id,
  receivedAt: r.received_at,
});

/** Only the newest label of each (gateway, analysis): a relabel supersedes the earlier one. */
const CURRENT_LABEL = `NOT EXISTS (SELECT 1 FROM labelled_examples n WHERE n.tenant_id = e.tenant_id AND n.gateway_id = e.gateway_id AND n.analysis_id = e.analysis_id
  AND (n.at > e.at OR (n.at = e.at AND n.id > e.id)))`;

function page<R, T>(rows: R[], first: number, map: (r: R) => T): Page<T> {
  return { items: rows.slice(0, first).map(map), hasNextPage: rows.length > first };
}

const isUniqueViolation = (err: unknown): boolean => {
  const e = err as { code?: string; message?: string };
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || /UNIQUE constraint failed/.test(e.message ?? '');
};

/**
 * The registered machine's columns. A newer record that carries a registration replaces them all
 * (a field the technician no longer registers is no longer shown); otherwise, and for an older
 * photo arriving late, an event only fills in what is missing.
 */
const REGISTERED = ['type', 'brand', 'model', 'serial_number', 'name', 'registered_id'] as const;

const NEWER = (): string => `CASE WHEN excluded.last_seen IS NOT NULL AND (machines.last_seen IS NULL OR excluded.last_seen >= machines.last_seen)`;

/**
 * The machine-storage and registry queries, the same SQL on SQLite and PostgreSQL.
 * Machines, analyses and labelled examples are keyed by (tenant_id, id): the ids are chosen by
 * gateways and are unique within a tenant only (migration 004), so every upsert's conflict
 * target and every query names the tenant.
 */
export class SqlStorage implements Storage {
  #applied: number[] = [];
  private constructor(private readonly db: Db) {}

  get kind(): 'sqlite' | 'postgres' {
    return this.db.kind;
  }

  static async open(db: Db): Promise<SqlStorage> {
    const s = new SqlStorage(db);
    s.#applied = await migrate(db);
    return s;
  }

  async migrations(): Promise<number[]> {
    return this.#applied;
  }

  async ping(): Promise<boolean> {
    try {
      await this.db.all('SELECT 1 AS ok');
      return true;
    } catch {
      return false;
    }
  }

  async addTenant(t: { id: string; name?: string | null }): Promise<void> {
    try {
      await this.db.run('INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)', [t.id, t.name ?? null, new Date().toISOString()]);
    } catch (err) {
      if (isUniqueViolation(err)) throw new TuError('REGISTRY_CONFLICT', `tenant ${t.id} already exists`);
      throw err;
    }
  }

  async listTenants(): Promise<TenantRow[]> {
    const rows = await this.db.all<{ id: string; name: string | null; created_at: string }>('SELECT id, name, created_at FROM tenants ORDER BY id');
    return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at }));
  }

  async addGateway(g: { id: string; tenantId: string; name?: string | null; secretHash: string }): Promise<void> {
    const tenant = await this.db.all('SELECT id FROM tenants WHERE id = ?', [g.tenantId]);
    if (tenant.length === 0) throw new TuError('UNKNOWN_TENANT', `no tenant ${g.tenantId}; add it first with \`tenants add ${g.tenantId}\``);
    try {
      await this.db.run('INSERT INTO gateways (id, tenant_id, name, secret_hash, online, last_seen, created_at) VALUES (?, ?, ?, ?, 0, NULL, ?)', [
        g.id,
        g.tenantId,
        g.name ?? null,
        g.secretHash,
        new Date().toISOString(),
      ]);
    } catch (err) {
      if (isUniqueViolation(err)) throw new TuError('REGISTRY_CONFLICT', `gateway ${g.id} already exists`);
      throw err;
    }
  }

  async getGateway(id: string): Promise<GatewayRow | undefined> {
    const [r] = await this.db.all<GatewayRec>('SELECT * FROM gateways WHERE id = ?', [id]);
    return r ? toGateway(r) : undefined;
  }

  async allGateways(): Promise<GatewayRow[]> {
    return (await this.db.all<GatewayRec>('SELECT * FROM gateways ORDER BY id')).map(toGateway);
  }

  async listGateways(f: GatewayFilter): Promise<Page<GatewayRow>> {
    const where = ['tenant_id = ?'];
    const params: SqlValue[] = [f.tenantId];
    if (f.search) {
      where.push("(lower(id) LIKE ? ESCAPE '\\' OR lower(coalesce(name, '')) LIKE ? ESCAPE '\\')");
      params.push(containsPattern(f.search), containsPattern(f.search));
    }
    if (f.after) {
      where.push('id > ?');
      params.push(decodeCursor(f.after, 1)[0]!);
    }
    const rows = await this.db.all<GatewayRec>(`SELECT * FROM gateways WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`, [...params, f.first + 1]);
    return page(rows, f.first, toGateway);
  }

  async setGatewaySecretHash(id: string, secretHash: string, opts: { ifHash?: string } = {}): Promise<boolean> {
    const rows =
      opts.ifHash === undefined
        ? await this.db.all<{ id: string }>('UPDATE gateways SET secret_hash = ? WHERE id = ? RETURNING id', [secretHash, id])
        : await this.db.all<{ id: string }>('UPDATE gateways SET secret_hash = ? WHERE id = ? AND secret_hash = ? RETURNING id', [secretHash, id, opts.ifHash]);
    return rows.length > 0;
  }

  /**
   * One UPDATE … FROM (VALUES …) per chunk, not one statement (and one commit) per gateway: a
   * reconnect wave of thousands of gateways otherwise queued thousands of commits ahead of their
   * events (bench/fleet.bench.ts). SQLite has UPDATE … FROM since 3.33; a CTE names the VALUES columns in both engines.
   */
  async setGatewayPresences(updates: readonly PresenceUpdate[]): Promise<void> {
    for (const part of chunks(updates, this.#rowsPer(3))) {
      if (part.length === 0) continue;
      await this.db.run(
        `WITH v (id, online, at) AS (VALUES ${part.map(() => '(CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS TEXT))').join(', ')})
         UPDATE gateways SET online = v.online, last_seen = v.at
         FROM v WHERE gateways.id = v.id AND (gateways.last_seen IS NULL OR gateways.last_seen <= v.at)`,
        part.flatMap((u) => [u.id, u.online ? 1 : 0, u.at]),
      );
    }
  }

  /**
   * One transaction per batch, a few multi-row statements instead of one per row: the events
   * (ON CONFLICT DO NOTHING RETURNING id says which are new), then the new events' effects.
   * An upsert's conflict target may appear once per statement, so effects on the same row go in
   * successive "rounds" (the k-th effect on each row in round k): each row still sees its
   * effects in event order, as when they were applied one by one.
   */
  async recordEvents(batch: { event: StoredEvent; effects: EventEffects }[]): Promise<('stored' | 'duplicate')[]> {
    if (batch.length === 0) return [];
    return this.db.tx(async (t) => {
      const inserted = new Set<string>();
      const J = this.#json;
      for (const part of chunks(inKeyOrder(batch, (b) => eventKey(b.event)), this.#rowsPer(8))) {
        const rows = await t.all<{ gateway_id: string; id: string }>(
          `INSERT INTO events (id, tenant_id, gateway_id, type, subject, time, received_at, data) VALUES ${part.map(() => `(?, ?, ?, ?, ?, ?, ?, ${J})`).join(', ')}
           ON CONFLICT (gateway_id, id) DO NOTHING RETURNING gateway_id, id`,
          part.flatMap(({ event: e }) => [e.id, e.tenantId, e.gatewayId, e.type, e.subject, e.time, e.receivedAt, this.#jsonText(eventDataToStore(e.data))]),
        );
        for (const r of rows) inserted.add(eventKey({ gatewayId: r.gateway_id, id: r.id }));
      }
      // The first occurrence of a new key is the stored one; a repeat within the batch is a duplicate.
      const out = batch.map(({ event }) => (inserted.delete(eventKey(event)) ? 'stored' : 'duplicate') as 'stored' | 'duplicate');
      const stored = batch.filter((_, i) => out[i] === 'stored').map((b) => b.effects);
      const machines = stored.flatMap((e) => (e.machine ? [e.machine] : []));
      for (const round of rounds(machines, rowKey)) {
        for (const registration of [true, false]) {
          const group = inKeyOrder(round.filter((m) => Boolean(m.registration) === registration), rowKey);
          for (const part of chunks(group, this.#rowsPer(18))) if (part.length > 0) await this.#upsertMachines(t, part, registration);
        }
      }
      const analyses = stored.flatMap((e) => (e.analysis ? [e.analysis] : []));
      const embeddings: { tenantId: string; id: string; embedding: string }[] = [];
      for (const round of rounds(analyses, (a) => rowKey(a.row))) {
        for (const mode of ['insert-only', 'upsert'] as const) {
          const group = inKeyOrder(round.filter((a) => a.mode === mode).map((a) => a.row), rowKey);
          for (const part of chunks(group, this.#rowsPer(11))) if (part.length > 0) await this.#putAnalyses(t, part, mode, embeddings);
        }
      }
      // The last embedding of each analysis (one conflict target per statement).
      const lastEmbedding = inKeyOrder([...new Map(embeddings.map((x) => [rowKey(x), x])).values()], rowKey);
      for (const part of chunks(lastEmbedding, this.#rowsPer(3))) {
        if (part.length === 0) continue;
        await t.run(
          `INSERT INTO analysis_embeddings (tenant_id, analysis_id, embedding) VALUES ${part.map(() => '(?, ?, ?)').join(', ')}
           ON CONFLICT (tenant_id, analysis_id) DO UPDATE SET embedding = excluded.embedding`,
          part.flatMap((x) => [x.tenantId, x.id, x.embedding]),
        );
      }
      const examples = stored.flatMap((e) => (e.labelled ? [e.labelled] : []));
      for (const part of chunks(examples, this.#rowsPer(16))) if (part.length > 0) await this.#putExamples(t, part);
      return out;
    });
  }

  /** A JSON value's placeholder: jsonb on PostgreSQL (migration 007), text on SQLite. */
  get #json(): string {
    return this.db.kind === 'postgres' ? '?::jsonb' : '?';
  }

  /**
   * JSON text for a JSON column (null stays NULL). jsonb refuses a NUL character inside a string,
   * which a JSON text column took: on PostgreSQL it becomes U+FFFD, so one such event cannot
   * fail its whole batch over and over (the storage queue retries a failed batch).
   */
  #jsonText(v: unknown): string | null {
    if (v === undefined || v === null) return null;
    const text = JSON.stringify(v);
    // JSON.stringify writes a NUL as the escape \u0000; one preceded by an odd run of backslashes
    // is that escape, an even run is an escaped backslash followed by the letters "u0000".
    return this.db.kind === 'postgres' && text.includes('\\u0000') ? text.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd') : text;
  }

  /** Rows per statement for `cols` parameters a row: under both engines' parameter limits (PostgreSQL 65535; SQLite 32766). */
  #rowsPer(cols: number): number {
    return Math.max(1, Math.min(1000, Math.floor(30_000 / cols)));
  }

  async #upsertMachines(t: Db, ms: NonNullable<EventEffects['machine']>[], registration: boolean): Promise<void> {
    const newer = NEWER();
    // A newer record that carries a registration replaces the registered columns; otherwise an event only fills in what is missing.
    const registered = (c: string) => (registration ? `${newer} THEN excluded.${c} ELSE coalesce(excluded.${c}, machines.${c}) END` : `coalesce(excluded.${c}, machines.${c})`);
    await t.run(
      `INSERT INTO machines (id, tenant_id, gateway_id, type, brand, model, serial_number, name, registered_id, last_seen, last_position, latest_thumbnail,
         recognised_type, recognised_confidence, recognised_analysis_id, type_match, last_seen_source, last_seen_note)
       VALUES ${ms.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
       ON CONFLICT (tenant_id, id) DO UPDATE SET
         gateway_id = excluded.gateway_id,
         ${REGISTERED.map((c) => `${c} = ${registered(c)}`).join(',\n         ')},
         last_position = ${newer} THEN coalesce(excluded.last_position, machines.last_position) ELSE machines.last_position END,
         latest_thumbnail = ${newer} THEN coalesce(excluded.latest_thumbnail, machines.latest_thumbnail) ELSE machines.latest_thumbnail END,
         recognised_type = ${newer} AND excluded.recognised_type IS NOT NULL THEN excluded.recognised_type ELSE machines.recognised_type END,
         recognised_confidence = ${newer} AND excluded.recognised_type IS NOT NULL THEN excluded.recognised_confidence ELSE machines.recognised_confidence END,
         recognised_analysis_id = ${newer} AND excluded.recognised_type IS NOT NULL THEN excluded.recognised_analysis_id ELSE machines.recognised_analysis_id END,
         type_match = ${newer} THEN excluded.type_match ELSE machines.type_match END,
         last_seen_source = ${newer} THEN excluded.last_seen_source ELSE machines.last_seen_source END,
         last_seen_note = ${newer} THEN excluded.last_seen_note ELSE machines.last_seen_note END,
         last_seen = ${newer} THEN excluded.last_seen ELSE machines.last_seen END`,
      ms.flatMap((m) => [
        m.id,
        m.tenantId,
        m.gatewayId,
        m.type ?? null,
        m.brand ?? null,
        m.model ?? null,
        m.serialNumber ?? null,
        m.name ?? null,
        m.registeredId ?? null,
        m.seenAt ?? null,
        json(m.lastPosition),
        m.thumbnail ?? null,
        m.recognition?.machineType ?? null,
        m.recognition?.confidence ?? null,
        m.recognition?.analysisId ?? null,
        m.typeMatch === undefined || m.typeMatch === null ? null : m.typeMatch ? 1 : 0,
        m.seenAt ? (m.seenSource ?? null) : null,
        m.seenAt ? (m.seenNote ?? null) : null,
      ]),
    );
  }

  async #putAnalyses(t: Db, rows: AnalysisRow[], mode: 'insert-only' | 'upsert', embeddings: { tenantId: string; id: string; embedding: string }[]): Promise<void> {
    const conflict =
      mode === 'insert-only'
        ? 'DO NOTHING'
        : `DO UPDATE SET machine_id = excluded.machine_id, status = excluded.status, steps = excluded.steps, results = excluded.results,
             failure = excluded.failure, started_at = coalesce(excluded.started_at, analyses.started_at), ended_at = excluded.ended_at, sort_time = excluded.sort_time`;
    const J = this.#json;
    await t.run(
      `INSERT INTO analyses (id, tenant_id, gateway_id, machine_id, status, steps, results, failure, started_at, ended_at, sort_time)
       VALUES ${rows.map(() => `(?, ?, ?, ?, ?, ${J}, ${J}, ${J}, ?, ?, ?)`).join(', ')} ON CONFLICT (tenant_id, id) ${conflict}`,
      rows.flatMap((a) => {
        const { results, embedding } = splitEmbedding(a.results);
        const text = mode === 'upsert' && embedding !== undefined ? embeddingText(embedding) : undefined;
        if (text) embeddings.push({ tenantId: a.tenantId, id: a.id, embedding: text });
        return [a.id, a.tenantId, a.gatewayId, a.machineId, a.status, this.#jsonText(a.steps), this.#jsonText(results), this.#jsonText(a.failure), a.startedAt, a.endedAt, a.sortTime];
      }),
    );
  }

  async #putExamples(t: Db, xs: LabelledExampleRow[]): Promise<void> {
    // Idempotent by (tenant, correction id): a re-sent label (even under another event id) is stored once.
    await t.run(
      `INSERT INTO labelled_examples (id, tenant_id, gateway_id, analysis_id, machine_id, sha256, embedding, label, previous_label, kind, by_whom, at, model_id, model_version, head_id, received_at)
       VALUES ${xs.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')} ON CONFLICT (tenant_id, id) DO NOTHING`,
      xs.flatMap((x) => [x.id, x.tenantId, x.gatewayId, x.analysisId, x.machineId, x.sha256, JSON.stringify(x.embedding), x.label, x.previousLabel, x.kind, x.by, x.at, x.modelId, x.modelVersion, x.headId, x.receivedAt]),
    );
  }

  /** The photo embedding of an analysis's recognition, kept apart from the row the dashboard reads (migration 006). */
  async analysisEmbedding(tenantId: string, analysisId: string): Promise<number[] | undefined> {
    const [r] = await this.db.all<{ embedding: string }>('SELECT embedding FROM analysis_embeddings WHERE tenant_id = ? AND analysis_id = ?', [tenantId, analysisId]);
    return r ? vectorOfText(r.embedding) : undefined;
  }

  /**
   * Deletes up to `limit` events received before `before`, oldest first, by primary key: a short
   * statement that locks only the rows it deletes, so ingest goes on meanwhile
   * (relay/src/storage/retention.ts calls it in small batches). Returns how many it deleted.
   */
  async deleteEventsBefore(before: string, limit: number): Promise<number> {
    return this.db.run('DELETE FROM events WHERE (gateway_id, id) IN (SELECT gateway_id, id FROM events WHERE received_at < ? ORDER BY received_at LIMIT ?)', [before, limit]);
  }

  async typeAccuracy(f: { tenantId: string; gatewayId?: string | undefined }): Promise<TypeAccuracyRow[]> {
    const where = ['e.tenant_id = ?', CURRENT_LABEL];
    const params: SqlValue[] = [f.tenantId];
    if (f.gatewayId) {
      where.push('e.gateway_id = ?');
      params.push(f.gatewayId);
    }
    const rows = await this.db.all<{ label: string; previous_label: string; kind: string; n: number | string }>(
      `SELECT e.label, e.previous_label, e.kind, count(*) AS n FROM labelled_examples e WHERE ${where.join(' AND ')} GROUP BY e.label, e.previous_label, e.kind`,
      params,
    );
    const by = new Map<string, TypeAccuracyRow>();
    const row = (t: string): TypeAccuracyRow => {
      let r = by.get(t);
      if (!r) by.set(t, (r = { machineType: t, confirmed: 0, correctedAway: 0, correctedTo: 0, accuracy: null }));
      return r;
    };
    for (const r of rows) {
      const n = Number(r.n);
      if (r.kind === 'confirmation') row(r.label).confirmed += n;
      else {
        row(r.previous_label).correctedAway += n;
        row(r.label).correctedTo += n;
      }
    }
    for (const r of by.values()) r.accuracy = r.confirmed + r.correctedAway > 0 ? r.confirmed / (r.confirmed + r.correctedAway) : null;
    return [...by.values()].sort((a, b) => (a.machineType < b.machineType ? -1 : a.machineType > b.machineType ? 1 : 0));
  }

  async listLabelledExamples(f: ExampleFilter): Promise<Page<LabelledExampleRow>> {
    const where = ['e.tenant_id = ?', CURRENT_LABEL];
    const params: SqlValue[] = [f.tenantId];
    if (f.gatewayId) {
      where.push('e.gateway_id = ?');
      params.push(f.gatewayId);
    }
    if (f.after) {
      const [at, id] = decodeCursor(f.after, 2) as [string, string];
      where.push('(e.at > ? OR (e.at = ? AND e.id > ?))');
      params.push(at, at, id);
    }
    const rows = await this.db.all<ExampleRec>(`SELECT e.* FROM labelled_examples e WHERE ${where.join(' AND ')} ORDER BY e.at, e.id LIMIT ?`, [...params, f.first + 1]);
    return page(rows, f.first, toExample);
  }

  async recentEventIds(limit: number): Promise<EventKey[]> {
    const rows = await this.db.all<{ gateway_id: string; id: string }>('SELECT gateway_id, id FROM events ORDER BY received_at DESC LIMIT ?', [limit]);
    return rows.map((r) => ({ gatewayId: r.gateway_id, id: r.id })).reverse();
  }

  /** Newest first (received_at, time, id descending): the dashboard's feed after a reload. */
  async listEvents(f: EventFilter): Promise<StoredEvent[]> {
    const where = ['tenant_id = ?'];
    const params: SqlValue[] = [f.tenantId];
    if (f.gatewayId) {
      where.push('gateway_id = ?');
      params.push(f.gatewayId);
    }
    const rows = await this.db.all<EventRec>(`SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY received_at DESC, time DESC, id DESC LIMIT ?`, [...params, f.limit]);
    return rows.map(toEvent);
  }

  async countEvents(f: { gatewayId?: string } = {}): Promise<number> {
    const rows = f.gatewayId
      ? await this.db.all<{ n: number | string }>('SELECT count(*) AS n FROM events WHERE gateway_id = ?', [f.gatewayId])
      : await this.db.all<{ n: number | string }>('SELECT count(*) AS n FROM events');
    return Number(rows[0]?.n ?? 0);
  }

  async getMachine(tenantId: string, id: string): Promise<MachineRow | undefined> {
    const [r] = await this.db.all<MachineRec>('SELECT * FROM machines WHERE tenant_id = ? AND id = ?', [tenantId, id]);
    return r ? toMachine(r) : undefined;
  }

  async listMachines(f: MachineFilter): Promise<Page<MachineRow>> {
    const where = ['tenant_id = ?'];
    const params: SqlValue[] = [f.tenantId];
    if (f.gatewayId) {
      where.push('gateway_id = ?');
      params.push(f.gatewayId);
    }
    if (f.type) {
      where.push('lower(type) = ?');
      params.push(f.type.toLowerCase());
    }
    if (f.search) {
      where.push(
        "lower(coalesce(name, '') || ' ' || coalesce(brand, '') || ' ' || coalesce(model, '') || ' ' || coalesce(serial_number, '') || ' ' || coalesce(type, '') || ' ' || coalesce(registered_id, '') || ' ' || id) LIKE ? ESCAPE '\\'",
      );
      params.push(containsPattern(f.search));
    }
    if (f.after) {
      where.push('id > ?');
      params.push(decodeCursor(f.after, 1)[0]!);
    }
    const rows = await this.db.all<MachineRec>(`SELECT * FROM machines WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`, [...params, f.first + 1]);
    return page(rows, f.first, toMachine);
  }

  async getAnalysis(tenantId: string, id: string): Promise<AnalysisRow | undefined> {
    const [r] = await this.db.all<AnalysisRec>('SELECT * FROM analyses WHERE tenant_id = ? AND id = ?', [tenantId, id]);
    return r ? toAnalysis(r) : undefined;
  }

  /** Newest first (sort_time, id descending). */
  async listAnalyses(f: AnalysisFilter): Promise<Page<AnalysisRow>> {
    const where = ['tenant_id = ?'];
    const params: SqlValue[] = [f.tenantId];
    for (const [col, v] of [
      ['gateway_id', f.gatewayId],
      ['machine_id', f.machineId],
      ['status', f.status],
    ] as const) {
      if (v) {
        where.push(`${col} = ?`);
        params.push(v);
      }
    }
    if (f.after) {
      const [time, id] = decodeCursor(f.after, 2) as [string, string];
      where.push('(sort_time < ? OR (sort_time = ? AND id < ?))');
      params.push(time, time, id);
    }
    const rows = await this.db.all<AnalysisRec>(`SELECT * FROM analyses WHERE ${where.join(' AND ')} ORDER BY sort_time DESC, id DESC LIMIT ?`, [...params, f.first + 1]);
    return page(rows, f.first, toAnalysis);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/** A row's key within a batch: machines, analyses and embeddings are keyed by (tenant, id). */
const rowKey = (r: { tenantId: string; id: string }): string => `${r.tenantId}\u0000${r.id}`;
/** An event's key as one string (migration 008): no id or gateway id holds a NUL (shared/src/bus/storable-text.ts). */
const eventKey = (e: EventKey): string => `${e.gatewayId}\u0000${e.id}`;

/**
 * Rows in one order of their keys (code units, not the database's collation). Batches may be
 * written concurrently (relay/src/ingest/storage-queue.ts `writers`): two transactions that lock
 * the same rows lock them in the same order, so they wait for each other instead of deadlocking.
 */
function inKeyOrder<T>(xs: readonly T[], key: (x: T) => string): T[] {
  return xs
    .map((x) => ({ x, k: key(x) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((e) => e.x);
}

/** Splits items into rounds where each key appears at most once; round k holds the k-th item of each key, in order. */
function rounds<T>(xs: T[], key: (x: T) => string): T[][] {
  const seen = new Map<string, number>();
  const out: T[][] = [];
  for (const x of xs) {
    const k = key(x);
    const n = seen.get(k) ?? 0;
    seen.set(k, n + 1);
    (out[n] ??= []).push(x);
  }
  return out;
}

/**
 * An event as the events table keeps it: without the photo embedding of a recognition result
 * (`results.recognition.embedding` of analysis.completed, `result.embedding` of
 * analysis.recognition.completed). The dashboard's feed reads these rows and never shows it, it
 * was most of each row's bytes, and analysis_embeddings keeps it once (from analysis.completed).
 */
function eventDataToStore(data: unknown): unknown {
  const d = data as { results?: unknown; result?: { embedding?: unknown } } | null;
  if (!d || typeof d !== 'object') return data;
  if (d.results) {
    const { results } = splitEmbedding(d.results);
    return results === d.results ? data : { ...d, results };
  }
  if (d.result && typeof d.result === 'object' && d.result.embedding !== undefined) {
    const { embedding: _dropped, ...result } = d.result;
    return { ...d, result };
  }
  return data;
}

/**
 * results.recognition.embedding is stored apart (analysis_embeddings); the row keeps the rest of
 * the results. Only splits: the vector's text is made by embeddingText, once, for the one table
 * that keeps it (the events row and the analyses row both drop it).
 */
function splitEmbedding(results: unknown): { results: unknown; embedding?: unknown } {
  const r = results as { recognition?: { embedding?: unknown } } | null;
  if (!r || typeof r !== 'object' || !r.recognition || typeof r.recognition !== 'object' || r.recognition.embedding === undefined) return { results };
  const { embedding, ...recognition } = r.recognition;
  return { results: { ...r, recognition }, embedding };
}

/**
 * analysis_embeddings.embedding: the packed vector's JSON (`{"dtype":"float32","dim":…,"base64":…}`,
 * shared/src/embedding.ts), about a quarter of the same numbers as JSON text and made without
 * formatting 1280 floats (that was the largest cost of a batched upsert, bench/relay.bench.ts).
 * Rows written before this are JSON arrays; vectorOfText reads both. Ingest unpacks packed
 * vectors (relay/src/ingest/unpack.ts); whatever form arrives, a reference (the gateway could not
 * read its vector) has no numbers to keep, and neither has a value that is not an embedding.
 */
function embeddingText(embedding: unknown): string | undefined {
  if (Array.isArray(embedding)) {
    const numbers = embeddingNumbers.safeParse(embedding);
    return numbers.success ? JSON.stringify(pack(numbers.data)) : undefined;
  }
  const packed = packedEmbedding.safeParse(embedding);
  return packed.success ? JSON.stringify(packed.data) : undefined;
}

/** The numbers of an analysis_embeddings row: packed JSON (embeddingText) or, in older rows, a JSON array. */
function vectorOfText(text: string): number[] {
  const v: unknown = JSON.parse(text);
  return Array.isArray(v) ? (v as number[]) : unpack(packedEmbedding.parse(v));
}

/** Cursor of a row for the page orderings above. */
export const cursorOf = {
  gateway: (g: GatewayRow): string => encodeCursor([g.id]),
  machine: (m: MachineRow): string => encodeCursor([m.id]),
  analysis: (a: AnalysisRow): string => encodeCursor([a.sortTime, a.id]),
  example: (x: LabelledExampleRow): string => encodeCursor([x.at, x.id]),
};
