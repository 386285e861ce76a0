import pg from 'pg';
import { seqOf } from './analysis.js';

/**
 * After the run, from PostgreSQL alone: per gateway, the events the simulator had acknowledged
 * (ack = stored, relay/README.md) that are not stored (lost), events stored more than once for one
 * sequence number (duplicated), and events stored after a later one of the same gateway
 * (out of order, by the relay's received_at, millisecond resolution: events in one millisecond
 * count as in order). Also the database rows kept and written per stored event.
 */
export interface GatewaySent {
  id: string;
  /** Sequence numbers created (0..nextSeq-1). */
  nextSeq: number;
  /** Sequence numbers the relay acknowledged. */
  acked: number[];
}

export interface CheckResult {
  stored: number;
  lost: number;
  /** Created but never acknowledged nor stored (still in an outbox when the run ended). */
  unacked: number;
  duplicated: number;
  outOfOrder: number;
  gatewaysWithLoss: number;
  rowsPerEvent: number;
  rowWritesPerEvent: number;
  rowsByTable: Record<string, number>;
}

/** Tables of the registry, not of events: left out of the rows kept per event. */
const REGISTRY_TABLES = new Set(['schema_migrations', 'tenants', 'gateways']);

/** Rows inserted + updated so far in the schema (pg_stat_user_tables): taken before the load, so the checker counts only the run's writes. */
export async function rowWrites(pgUrl: string, schema: string): Promise<number> {
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  try {
    const r = await c.query<{ n: string | null }>('SELECT sum(n_tup_ins + n_tup_upd)::text AS n FROM pg_stat_user_tables WHERE schemaname = $1', [schema]);
    return Number(r.rows[0]?.n ?? 0);
  } finally {
    await c.end();
  }
}

/** Rows written so far to the events table and gateway presence updates (the storage writer's two kinds of work). */
export async function writeMix(pgUrl: string, schema: string): Promise<{ eventRows: number; presenceUpdates: number }> {
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  try {
    const r = await c.query<{ relname: string; ins: string; upd: string }>("SELECT relname, n_tup_ins::text AS ins, n_tup_upd::text AS upd FROM pg_stat_user_tables WHERE schemaname = $1 AND relname IN ('events', 'gateways')", [schema]);
    const row = (t: string) => r.rows.find((x) => x.relname === t);
    return { eventRows: Number(row('events')?.ins ?? 0), presenceUpdates: Number(row('gateways')?.upd ?? 0) };
  } finally {
    await c.end();
  }
}

/** Waits until `target` events of the tenant are stored, or none more were for `stallMs`, or `maxMs` passed. */
export async function settle(pgUrl: string, schema: string, tenant: string, target: number, o: { maxMs: number; stallMs: number }): Promise<{ stored: number; ms: number }> {
  const c = new pg.Client({ connectionString: pgUrl });
  await c.connect();
  const t0 = Date.now();
  let last = -1;
  let lastChange = t0;
  try {
    for (;;) {
      const n = Number((await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${schema}.events WHERE tenant_id = $1`, [tenant])).rows[0]!.n);
      if (n !== last) lastChange = Date.now();
      last = n;
      if (n >= target || Date.now() - t0 > o.maxMs || Date.now() - lastChange > o.stallMs) return { stored: n, ms: Date.now() - t0 };
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    await c.end();
  }
}

export async function checkFleet(opts: { pgUrl: string; schema: string; tenant: string; sent: GatewaySent[]; writesBefore: number }): Promise<CheckResult> {
  const c = new pg.Client({ connectionString: opts.pgUrl });
  await c.connect();
  try {
    const { rows } = await c.query<{ id: string; gateway_id: string; received_at: string }>(`SELECT id, gateway_id, received_at FROM ${opts.schema}.events WHERE tenant_id = $1`, [opts.tenant]);
    const byGateway = new Map<string, { seq: number; at: string }[]>();
    for (const r of rows) {
      const list = byGateway.get(r.gateway_id) ?? [];
      list.push({ seq: seqOf(r.id), at: r.received_at });
      byGateway.set(r.gateway_id, list);
    }
    let lost = 0;
    let unacked = 0;
    let duplicated = 0;
    let outOfOrder = 0;
    let gatewaysWithLoss = 0;
    for (const g of opts.sent) {
      const list = byGateway.get(g.id) ?? [];
      const count = new Map<number, number>();
      for (const e of list) count.set(e.seq, (count.get(e.seq) ?? 0) + 1);
      for (const n of count.values()) if (n > 1) duplicated += n - 1;
      const lostHere = g.acked.filter((s) => !count.has(s)).length;
      lost += lostHere;
      if (lostHere > 0) gatewaysWithLoss++;
      const acked = new Set(g.acked);
      for (let s = 0; s < g.nextSeq; s++) if (!acked.has(s) && !count.has(s)) unacked++;
      list.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
      // Highest sequence among rows received strictly earlier than the current millisecond.
      let maxBefore = -1;
      let maxInGroup = -1;
      let groupAt = '';
      for (const e of list) {
        if (e.at !== groupAt) {
          maxBefore = Math.max(maxBefore, maxInGroup);
          maxInGroup = -1;
          groupAt = e.at;
        }
        if (e.seq < maxBefore) outOfOrder++;
        maxInGroup = Math.max(maxInGroup, e.seq);
      }
    }
    // The statistics of the last transactions reach pg_stat_user_tables within about a second.
    await new Promise((r) => setTimeout(r, 1500));
    const tables = await c.query<{ relname: string; writes: string }>('SELECT relname, (n_tup_ins + n_tup_upd)::text AS writes FROM pg_stat_user_tables WHERE schemaname = $1', [opts.schema]);
    const rowsByTable: Record<string, number> = {};
    let kept = 0;
    for (const t of tables.rows) {
      if (REGISTRY_TABLES.has(t.relname)) continue;
      const n = Number((await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${opts.schema}.${t.relname}`)).rows[0]!.n);
      rowsByTable[t.relname] = n;
      kept += n;
    }
    const writes = tables.rows.reduce((a, t) => a + Number(t.writes), 0) - opts.writesBefore;
    const stored = rows.length;
    return { stored, lost, unacked, duplicated, outOfOrder, gatewaysWithLoss, rowsPerEvent: stored ? kept / stored : 0, rowWritesPerEvent: stored ? writes / stored : 0, rowsByTable };
  } finally {
    await c.end();
  }
}
