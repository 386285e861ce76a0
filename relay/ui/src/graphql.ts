/**
 * Everything the dashboard says to the relay: the GraphQL queries (POST /graphql), the live
 * subscription (graphql-ws), and the zod shapes of what comes back (relay/src/graphql/schema.ts).
 */
import { createClient } from 'graphql-ws';
import * as z from 'zod/mini';

const str = z.string();
const ns = z.optional(z.nullable(str));
export const gatewaySchema = z.object({ id: str, name: ns, online: z.boolean(), lastSeen: ns });
/** A GPS position (shared/src/schemas/common.ts gps): degrees, altitude in metres. */
export const positionSchema = z.object({ latitude: z.number(), longitude: z.number(), altitude: z.optional(z.number()) });
const recognitionSchema = z.object({ machineType: str, confidence: z.number(), analysisId: str });
export const machineSchema = z.object({
  id: str,
  gatewayId: str,
  type: ns,
  brand: ns,
  model: ns,
  serialNumber: ns,
  name: ns,
  registeredId: ns,
  lastSeen: ns,
  lastSeenSource: ns,
  lastSeenNote: ns,
  latestThumbnail: ns,
  lastPosition: z.optional(z.nullable(positionSchema)),
  lastRecognition: z.optional(z.nullable(recognitionSchema)),
  typeMatch: z.optional(z.nullable(z.boolean())),
});
export const analysisSchema = z.object({ id: str, gatewayId: str, machineId: str, status: str, steps: z.optional(z.unknown()), failure: z.optional(z.unknown()), results: z.optional(z.unknown()), startedAt: ns, endedAt: ns });
export const feedEventSchema = z.object({ id: str, type: str, analysisId: str, gatewayId: str, time: str, data: z.optional(z.unknown()) });
export type Gateway = z.infer<typeof gatewaySchema>;
export type Machine = z.infer<typeof machineSchema>;
export type Analysis = z.infer<typeof analysisSchema>;
export type FeedEvent = z.infer<typeof feedEventSchema>;
export type Position = z.infer<typeof positionSchema>;
export type Query = <T>(query: string, variables: Record<string, unknown>, pick: (d: Record<string, unknown>) => T) => Promise<T>;

const graphqlErrors = z.object({
  errors: z.optional(z.array(z.object({ message: str }))),
  data: z.optional(z.nullable(z.record(str, z.unknown()))),
  // the relay's own errors (401 before GraphQL runs): { error: { code, message } }
  error: z.optional(z.object({ code: str, message: str })),
});
/** The relay refused the token (401 / UNAUTHENTICATED): the dashboard signs out with this message. */
export class AuthError extends Error {}

/** One GraphQL request with the bearer token; `pick` takes the part of `data` the caller needs. */
export async function gql<T>(token: string, query: string, variables: Record<string, unknown>, pick: (d: Record<string, unknown>) => T): Promise<T> {
  let res: Response;
  try {
    res = await fetch('/graphql', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
  } catch {
    throw new Error('The relay does not answer.');
  }
  const body = graphqlErrors.safeParse(await res.json().catch(() => ({})));
  if (!body.success) throw new Error(`Unexpected answer from the relay (${res.status}).`);
  if (res.status === 401 || body.data.error?.code === 'UNAUTHENTICATED') throw new AuthError(body.data.error?.message ?? 'the token was refused');
  if (body.data.error) throw new Error(`${body.data.error.message} [${body.data.error.code}]`);
  if (body.data.errors?.length) throw new Error(body.data.errors.map((e) => e.message).join('; '));
  if (!res.ok || !body.data.data) throw new Error(`The relay answered ${res.status}.`);
  return pick(body.data.data);
}

const nodes = <T,>(schema: z.ZodMiniType<T>, v: unknown): T[] => {
  const r = z.object({ nodes: z.array(z.unknown()) }).safeParse(v);
  return r.success ? r.data.nodes.flatMap((n) => { const p = schema.safeParse(n); return p.success ? [p.data] : []; }) : [];
};
/** A connection's pageInfo.hasNextPage: the relay has more than the page it answered (false when not said). */
const hasNextPage = (v: unknown): boolean => {
  const r = z.object({ pageInfo: z.object({ hasNextPage: z.boolean() }) }).safeParse(v);
  return r.success && r.data.pageInfo.hasNextPage;
};
const list = <T,>(schema: z.ZodMiniType<T>, v: unknown): T[] => (Array.isArray(v) ? v.flatMap((n) => { const p = schema.safeParse(n); return p.success ? [p.data] : []; }) : []);

const MACHINE_FIELDS = 'id gatewayId type brand model serialNumber name registeredId lastSeen lastSeenSource lastSeenNote lastPosition latestThumbnail lastRecognition { machineType confidence analysisId } typeMatch';
const EVENT_FIELDS = 'id type analysisId gatewayId time data';
/** How many of a machine's analyses its detail lists (the newest). */
export const HISTORY_SIZE = 20;
/** How many of the newest failed analyses the dashboard lists. */
export const FAILURES_SIZE = 20;
/** How many stored events the feed starts with (the relay allows 1..100). */
export const FEED_SIZE = 100;

/** The queries the dashboard makes, bound to one token. */
export function api(token: string) {
  const q: Query = (query, variables, pick) => gql(token, query, variables, pick);
  return {
    query: q,
    gatewaysAndFailures: () =>
      q(`query($n: Int) { gateways(first: 100) { nodes { id name online lastSeen } } analyses(first: $n, status: failed) { nodes { id gatewayId machineId status steps failure startedAt endedAt } pageInfo { hasNextPage } } }`, { n: FAILURES_SIZE }, (d) => ({
        gateways: nodes(gatewaySchema, d['gateways']),
        failures: nodes(analysisSchema, d['analyses']),
        // Whether the relay has older failures than the page asked for: the list must not pass for all of them.
        moreFailures: hasNextPage(d['analyses']),
      })),
    machines: (search: string, type: string) =>
      q(`query($s: String, $t: String) { machines(first: 100, search: $s, type: $t) { nodes { ${MACHINE_FIELDS} } } }`, { s: search || null, t: type || null }, (d) => nodes(machineSchema, d['machines'])),
    machine: (id: string) =>
      q(`query($id: ID!, $n: Int) { machine(id: $id) { ${MACHINE_FIELDS} analyses(first: $n) { nodes { id gatewayId machineId status steps failure results startedAt endedAt } pageInfo { hasNextPage } } } }`, { id, n: HISTORY_SIZE }, (d) => {
        const m = machineSchema.safeParse(d['machine']);
        const a = z.object({ analyses: z.unknown() }).safeParse(d['machine']);
        // Whether the relay has older analyses than the page asked for (hasNextPage): the list must not pass for all of them.
        return m.success ? { m: m.data, analyses: a.success ? nodes(analysisSchema, a.data.analyses) : [], more: a.success && hasNextPage(a.data.analyses) } : undefined;
      }),
    recentEvents: () => q(`query($n: Int) { recentEvents(first: $n) { ${EVENT_FIELDS} } }`, { n: FEED_SIZE }, (d) => list(feedEventSchema, d['recentEvents'])),
    analysisStatus: (id: string) => q('query($id: ID!) { analysis(id: $id) { status } }', { id }, (d) => z.object({ status: str }).safeParse(d['analysis'])),
  };
}
export type Api = ReturnType<typeof api>;

/**
 * The relay pushes an event before it stores it: resolves once the analysis is stored as
 * `status` (a few quick polls, then gives up; the caller reloads either way).
 */
export async function whenStored(a: Api, id: string, status: string): Promise<void> {
  for (let i = 0, delay = 50; i < 12; i++, delay = Math.min(delay * 2, 2000)) {
    const s = await a.analysisStatus(id);
    if (s.success && s.data.status === status) return;
    await new Promise((r) => setTimeout(r, delay));
  }
}

export interface LiveHandlers {
  /**
   * The subscription is (re)established: the caller loads the stored events now, so no gap;
   * `again` after a lost connection, when what was stored meanwhile must be loaded too.
   */
  connected: (again: boolean) => void;
  closed: () => void;
  /** The relay closed the socket because the token expired: only a new token helps. */
  refused: (message: string) => void;
  event: (e: FeedEvent) => void;
  /** The feed stopped for good, with the reason a person can act on. */
  stopped: (message: string) => void;
}

/** The longest wait between two attempts to reconnect the live feed (plus up to 1 s at random, so dashboards do not all come at once). */
const MAX_RETRY_WAIT_MS = 5000;
const closeEvent = z.object({ code: z.number(), reason: z.optional(str) });

/** The live analysisEvents subscription over graphql-ws; returns its stop function. */
export function subscribeLive(token: string, h: LiveHandlers): () => void {
  const client = createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 1e9,
    // graphql-ws retries only after a close event by default: once the relay is down, the next
    // attempt ends in a socket error instead, which stopped the feed for good while the badge
    // said "Reconnecting…" (a relay restart left every open dashboard without its live feed).
    // Close codes graphql-ws holds fatal (4401 and the like) still stop it.
    shouldRetry: () => true,
    // graphql-ws doubles its wait without a limit (about 8 minutes after ten failed attempts): a
    // dashboard open through a relay outage would stay without its feed for minutes after it.
    retryWait: (retries) => new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** retries, MAX_RETRY_WAIT_MS) + Math.random() * 1000)),
    // The subscription is requested on this socket as soon as it is acknowledged (`connected`);
    // the stored events are loaded from then on and merged by event id (state.ts withStored).
    on: {
      connected: () => {
        h.connected(everConnected);
        everConnected = true;
      },
      closed: (e) => {
        const close = closeEvent.safeParse(e);
        // 4401: the token expired (relay/src/graphql/ws-guard.ts WS_CLOSE.tokenExpired). A token
        // refused at connection_init closes without a code (mercurius): the queries' 401 says why.
        if (close.success && close.data.code === 4401) h.refused(close.data.reason || 'the token expired');
        else h.closed();
      },
    },
  });
  let everConnected = false;
  const stop = client.subscribe(
    { query: `subscription { analysisEvents { ${EVENT_FIELDS} } }` },
    {
      next: (msg) => {
        const e = feedEventSchema.safeParse((msg.data as Record<string, unknown> | null | undefined)?.['analysisEvents']);
        if (e.success) h.event(e.data);
      },
      error: (err) => {
        const close = closeEvent.safeParse(err);
        const why = err instanceof Error ? err.message : Array.isArray(err) ? err.map((x: { message?: string }) => x.message).join('; ') : close.success ? `connection closed (${close.data.code}${close.data.reason ? ` ${close.data.reason}` : ''})` : 'connection closed';
        h.stopped(`The live feed stopped: ${why}. Reload the page to retry.`);
      },
      complete: () => undefined,
    },
  );
  return () => {
    stop();
    void client.dispose();
  };
}
