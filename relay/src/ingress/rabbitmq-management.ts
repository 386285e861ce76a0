import { z } from 'zod';
import { systemClock, type Clock, type Logger } from '@tu/shared';
import type { RabbitmqSettings } from './rabbitmq.js';

export type RabbitmqManagementSettings = NonNullable<RabbitmqSettings['management']>;

/** What closing a gateway's connections came to (never thrown: a revocation stands without it). */
export type CloseOutcome = { ok: true; closed: number; url: string } | { ok: false; reason: string };

/** `GET /api/connections/username/{user}`: a list of connections (only the count is used). */
const connectionList = z.array(z.object({ name: z.string() }).loose());

/**
 * Closes a gateway's open connections on the RabbitMQ cluster through the management HTTP API
 * (plugin rabbitmq_management, enabled by rabbitmqEnabledPlugins when configured): RabbitMQ 3.10
 * does not reliably re-check the topic permission of an open MQTT connection, so a revoked
 * gateway's open connection would otherwise stay open (relay/README.md "RabbitMQ ingress").
 *
 * One request pair per gateway, not a scan of every connection: `/api/connections/username/{id}`
 * reads the broker's connection tracking, which is cluster-wide, so any node's listener answers
 * for the connections on all nodes; listing then DELETE with an X-Reason the broker logs. The
 * URLs are tried in turn (a node down, the next answers). Listing and closing OTHER users'
 * connections needs the `administrator` tag, which the relay's auth routes grant its own user
 * when this is configured (relay/src/http/routes/broker-auth.ts).
 */
export function rabbitmqConnectionCloser(o: { settings: RabbitmqManagementSettings; username: string; password: string; logger?: Logger; fetch?: typeof fetch }): {
  closeGateway(gatewayId: string, reason: string): Promise<CloseOutcome>;
} {
  const doFetch = o.fetch ?? fetch;
  const authorization = `Basic ${Buffer.from(`${o.username}:${o.password}`).toString('base64')}`;
  const log = o.logger?.child({ component: 'rabbitmq-management' });

  /** The reason a user can act on, from an HTTP status of the management API. */
  const explain = (res: Response, url: string): string => {
    void res.body?.cancel(); // not read: free the connection
    const status = res.status;
    if (status === 401)
      return `the management API at ${url} refused the relay's user (401): check ingress.rabbitmq.username/password, that the broker's auth_http points at this relay, and that the relay answering it has ingress.rabbitmq.management set (it grants its user the administrator tag only then)`;
    if (status === 403) return `the management API at ${url} refused the request (403): the relay's user lacks the administrator tag (set ingress.rabbitmq.management on the relay instances that answer the broker's auth requests)`;
    return `the management API at ${url} answered HTTP ${status}`;
  };

  const once = async (base: string, gatewayId: string, reason: string): Promise<number> => {
    const url = `${base.replace(/\/+$/, '')}/api/connections/username/${encodeURIComponent(gatewayId)}`;
    const headers = { authorization, accept: 'application/json' };
    const list = await doFetch(url, { headers, signal: AbortSignal.timeout(o.settings.timeoutMs) });
    if (!list.ok) throw new Error(explain(list, base));
    const parsed = connectionList.safeParse(await list.json());
    if (!parsed.success) throw new Error(`the management API at ${base} answered a connection list of an unexpected form (is it RabbitMQ's management plugin?)`);
    if (parsed.data.length === 0) return 0;
    // The broker logs the reason with the closed connection; only printable ASCII in a header.
    const del = await doFetch(url, { method: 'DELETE', headers: { ...headers, 'x-reason': reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) }, signal: AbortSignal.timeout(o.settings.timeoutMs) });
    if (!del.ok) throw new Error(explain(del, base));
    return parsed.data.length;
  };

  return {
    async closeGateway(gatewayId, reason) {
      const failures: string[] = [];
      for (const base of o.settings.urls) {
        try {
          const closed = await once(base, gatewayId, reason);
          if (closed > 0) log?.info({ gatewayId, closed, url: base }, 'closed the broker connections of a revoked gateway');
          return { ok: true, closed, url: base };
        } catch (err) {
          const e = err as Error;
          failures.push(e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer from ${base} within ${o.settings.timeoutMs} ms` : e.message.startsWith('the management API') ? e.message : `${base} unreachable (${e.message}): is rabbitmq_management enabled and listening there (management.tcp.port)?`);
        }
      }
      const reasonText = failures.join('; ');
      log?.error({ gatewayId, reason: reasonText }, "could not close a revoked gateway's broker connections; it stays cut off from storage (its messages are dead-lettered) but its connection stays open");
      return { ok: false, reason: reasonText };
    },
  };
}

/**
 * `closeGateway` at most once per `closeIntervalMs` per gateway (by the injected clock): the
 * ingress asks on every dead-lettered message of a revoked gateway, which may keep publishing
 * (or reconnecting within the broker's auth cache TTL) many times a second.
 */
export function throttledCloser(closer: ReturnType<typeof rabbitmqConnectionCloser>, o: { intervalMs: number; clock?: Clock }): { request(gatewayId: string, reason: string): Promise<CloseOutcome> | undefined } {
  const clock = o.clock ?? systemClock;
  const last = new Map<string, number>();
  return {
    request(gatewayId, reason) {
      const now = clock.now();
      const at = last.get(gatewayId);
      if (at !== undefined && now - at < o.intervalMs) return undefined;
      // Bounded: a flood of distinct ids cannot grow this without end (worst case: one extra close each).
      if (last.size > 10_000) last.clear();
      last.set(gatewayId, now);
      return closer.closeGateway(gatewayId, reason);
    },
  };
}
