import type { Readable } from 'node:stream';
import type { IResolvers, MercuriusContext } from 'mercurius';
import { TuError, unstorableTextAt } from '@tu/shared';
import { fanoutTopic, type AnalysisEventPayload } from '../ingest/fanout.js';
import type { Presence } from '../ingest/presence.js';
import type { Registry } from '../registry/registry.js';
import { cursorOf } from '../storage/sql-storage.js';
import type { AnalysisStatus, GatewayRow, MachineRow, Storage } from '../storage/types.js';
import type { Principal } from './auth.js';
import { checkedArgs } from './args.js';
import { connection, defaultPageOf, pageSize } from './connection.js';
import { subscriptionError } from './errors.js';
import { JSONScalar } from './json-scalar.js';
import { unstorableTextRefusal } from './request-guard.js';

export interface GraphDeps {
  storage: Storage;
  registry: Registry;
  presence: Presence;
  /** Live subscription count (metrics). */
  subscriptions: { active: number; total: number };
  /**
   * Subscriptions one graphql-ws connection may hold at once: each is a listener on the fan-out
   * emitter and a stream, and one client could otherwise open them without end.
   */
  maxSubscriptionsPerConnection?: number;
}

type Ctx = MercuriusContext & { auth?: Principal };

type PageArgs = { first?: number | null; after?: string | null };

const principal = (ctx: Ctx): Principal => {
  if (!ctx.auth) throw new TuError('UNAUTHENTICATED');
  return ctx.auth;
};
const opt = <T>(v: T | null | undefined): T | undefined => v ?? undefined;

export function buildResolvers(deps: GraphDeps): IResolvers {
  const { storage, registry, presence } = deps;
  /** Subscriptions held per graphql-ws connection (its token from app.ts onConnect). */
  const perConnection = new WeakMap<object, number>();

  /** The gateway if it belongs to the caller's tenant; FORBIDDEN otherwise (unknown ids look the same). */
  async function ownGateway(ctx: Ctx, id: string): Promise<void> {
    const gw = await registry.gateway(id);
    if (!gw || gw.tenantId !== principal(ctx).tenant) throw new TuError('FORBIDDEN', `no gateway ${id.slice(0, 64)} for this tenant`);
  }

  return {
    JSON: JSONScalar,
    Query: {
      gateways: async (_: unknown, raw: PageArgs & { search?: string | null }, ctx: Ctx) => {
        const a = checkedArgs('gateways', raw);
        return connection(await storage.listGateways({ tenantId: principal(ctx).tenant, first: pageSize(a.first), after: opt(a.after), search: opt(a.search) }), cursorOf.gateway);
      },
      gateway: async (_: unknown, a: { id: string }, ctx: Ctx) => {
        const g = await storage.getGateway(a.id);
        return g && g.tenantId === principal(ctx).tenant ? g : null;
      },
      machines: async (_: unknown, raw: PageArgs & { gatewayId?: string | null; type?: string | null; search?: string | null }, ctx: Ctx) => {
        const a = checkedArgs('machines', raw);
        return connection(
          await storage.listMachines({ tenantId: principal(ctx).tenant, first: pageSize(a.first), after: opt(a.after), gatewayId: opt(a.gatewayId), type: opt(a.type), search: opt(a.search) }),
          cursorOf.machine,
        );
      },
      machine: async (_: unknown, a: { id: string }, ctx: Ctx) => (await storage.getMachine(principal(ctx).tenant, a.id)) ?? null,
      analyses: async (_: unknown, raw: PageArgs & { gatewayId?: string | null; machineId?: string | null; status?: AnalysisStatus | null }, ctx: Ctx) => {
        const a = checkedArgs('analyses', raw);
        return connection(
          await storage.listAnalyses({ tenantId: principal(ctx).tenant, first: pageSize(a.first), after: opt(a.after), gatewayId: opt(a.gatewayId), machineId: opt(a.machineId), status: opt(a.status) }),
          cursorOf.analysis,
        );
      },
      analysis: async (_: unknown, a: { id: string }, ctx: Ctx) => (await storage.getAnalysis(principal(ctx).tenant, a.id)) ?? null,
      recentEvents: async (_: unknown, raw: { first?: number | null; gatewayId?: string | null }, ctx: Ctx) => {
        const a = checkedArgs('recentEvents', raw);
        if (a.gatewayId) await ownGateway(ctx, a.gatewayId);
        const rows = await storage.listEvents({ tenantId: principal(ctx).tenant, gatewayId: opt(a.gatewayId), limit: a.first ?? defaultPageOf('recentEvents') });
        return rows.map((e): AnalysisEventPayload => ({ id: e.id, type: e.type, analysisId: e.subject, gatewayId: e.gatewayId, time: e.time, data: e.data }));
      },
      typeAccuracy: async (_: unknown, raw: { gatewayId?: string | null }, ctx: Ctx) => {
        const a = checkedArgs('typeAccuracy', raw);
        if (a.gatewayId) await ownGateway(ctx, a.gatewayId);
        return storage.typeAccuracy({ tenantId: principal(ctx).tenant, gatewayId: opt(a.gatewayId) });
      },
      labelledExamples: async (_: unknown, raw: PageArgs & { gatewayId?: string | null }, ctx: Ctx) => {
        const a = checkedArgs('labelledExamples', raw);
        if (a.gatewayId) await ownGateway(ctx, a.gatewayId);
        return connection(await storage.listLabelledExamples({ tenantId: principal(ctx).tenant, first: pageSize(a.first), after: opt(a.after), gatewayId: opt(a.gatewayId) }), cursorOf.example);
      },
    },
    Gateway: {
      // Shared presence (Redis) when configured, else this instance's; the stored row when neither
      // knows: the rule of relay/src/ingest/shown-presence.ts, which `gateways list` follows too.
      online: async (g: GatewayRow) => (await presence.shown(g)).online,
      lastSeen: async (g: GatewayRow) => (await presence.shown(g)).lastSeen,
      machines: async (g: GatewayRow, raw: PageArgs) => {
        const a = checkedArgs('Gateway.machines', raw);
        return connection(await storage.listMachines({ tenantId: g.tenantId, gatewayId: g.id, first: pageSize(a.first), after: opt(a.after) }), cursorOf.machine);
      },
    },
    Machine: {
      analyses: async (m: MachineRow, raw: PageArgs & { status?: AnalysisStatus | null }) => {
        const a = checkedArgs('Machine.analyses', raw);
        return connection(await storage.listAnalyses({ tenantId: m.tenantId, machineId: m.id, first: pageSize(a.first), after: opt(a.after), status: opt(a.status) }), cursorOf.analysis);
      },
    },
    Subscription: {
      analysisEvents: {
        subscribe: async (_: unknown, raw: { gatewayId?: string | null }, ctx: Ctx) => {
          let stream: Readable;
          const conn = (ctx as { wsConnection?: object }).wsConnection;
          try {
            const { tenant, exp } = principal(ctx);
            // The connection is closed when its token expires (graphql/ws-guard.ts); this covers
            // a subscription requested in the last moment before that.
            if (exp !== undefined && exp * 1000 <= Date.now()) throw new TuError('UNAUTHENTICATED', 'the token expired; connect again with a new token');
            // Arguments of a subscription never pass the HTTP request guard (app.ts).
            const bad = unstorableTextAt(raw, 'arguments');
            if (bad) throw unstorableTextRefusal(bad);
            const a = checkedArgs('analysisEvents', raw);
            if (a.gatewayId) await ownGateway(ctx, a.gatewayId);
            const max = deps.maxSubscriptionsPerConnection;
            if (conn && max !== undefined && (perConnection.get(conn) ?? 0) >= max) {
              throw new TuError('QUERY_TOO_COMPLEX', `this connection already holds ${max} subscriptions (graphql.websocket.maxSubscriptionsPerConnection); end one, or subscribe to all gateways at once (no gatewayId)`);
            }
            // Taken before the await: subscriptions sent together all passed the check otherwise.
            if (conn) perConnection.set(conn, (perConnection.get(conn) ?? 0) + 1);
            try {
              stream = (await ctx.pubsub.subscribe(fanoutTopic(tenant, a.gatewayId ?? '+'))) as unknown as Readable;
            } catch (err) {
              if (conn) perConnection.set(conn, (perConnection.get(conn) ?? 1) - 1);
              throw err;
            }
          } catch (err) {
            throw subscriptionError(err, ctx.app.log);
          }
          deps.subscriptions.active++;
          deps.subscriptions.total++;
          let ended = false;
          const end = () => {
            if (!ended) {
              deps.subscriptions.active--;
              if (conn) perConnection.set(conn, (perConnection.get(conn) ?? 1) - 1);
            }
            ended = true;
          };
          stream.once('close', end);
          stream.once('end', end);
          return stream;
        },
      },
    },
  } as IResolvers;
}
