import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { isDotSafeGatewayId, LoginThrottle, rabbitmqTopicAnswer, sendRefusal, TuError, type Logger, type LoginThrottleLimits } from '@tu/shared';
import type { Registry } from '../../registry/registry.js';
import { RABBITMQ_AUTH_PREFIX } from '../../ingress/rabbitmq-broker.js';

/** What the broker auth routes need (config ingress.rabbitmq; built by startRelay). */
export interface BrokerAuthOptions {
  /** Path secret: the broker's auth_http URLs carry it (rabbitmqAuthBaseUrl). */
  secret: string;
  /** Client addresses allowed (the broker nodes); empty = any. */
  allowFrom: string[];
  relayUser: string;
  relayPassword: string;
  /**
   * ingress.rabbitmq.management is set: the relay's user gets the `administrator` tag, which the
   * management API needs to list and close OTHER users' (revoked gateways') connections.
   */
  relayManagesConnections?: boolean;
  vhost: string;
  /** The relay's queue; the relay user may configure, read and write it and `{queue}.dead`. */
  queue: string;
  /**
   * Whether this instance's ingress has declared its queue and bound it to amq.topic
   * (relay/src/ingress/rabbitmq.ts `queueDeclared`). Until then gateway logins are refused: the
   * MQTT plugin acknowledges a publish that amq.topic routes nowhere, so a gateway let in before
   * the queue exists (a first deployment, a relay that cannot reach the cluster, a deleted queue)
   * has every event acknowledged and dropped, and its outbox forgets them.
   */
  queueDeclared: () => boolean;
  /** Failed logins, per username (the broker does not say where the gateway connects from). */
  logins: LoginThrottleLimits;
  now?: () => number;
  /** Counted here; reported in /api/v1/health. */
  stats: BrokerAuthStats;
}

export const newBrokerAuthStats = (): BrokerAuthStats => ({ allowed: 0, denied: 0, throttled: 0, strangers: 0, queueNotDeclared: 0 });

export interface BrokerAuthStats {
  allowed: number;
  denied: number;
  /** Logins answered without scrypt after too many failures for that gateway (only a secret verified before passes). */
  throttled: number;
  /** Requests without the secret or from an address not allowed (answered 404). */
  strangers: number;
  /** Gateway logins refused because this instance has not declared its queue yet (see `queueDeclared`). */
  queueNotDeclared: number;
}

const name = z.string().min(1).max(256);
// The broker sends more fields than these (tags, client_id, variable_map.*): unknown keys are dropped.
const userQ = z.object({ username: name, password: z.string().max(1024), client_id: z.string().max(256).optional() });
const vhostQ = z.object({ username: name, vhost: name });
const resourceQ = z.object({ username: name, vhost: name, resource: z.enum(['exchange', 'queue', 'topic']), name: z.string().max(256), permission: z.enum(['configure', 'write', 'read']) });
const topicQ = resourceQ.extend({ routing_key: z.string().max(1024) });

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
const sameSecret = (a: string, b: string): boolean => timingSafeEqual(digest(a), digest(b));

/**
 * rabbitmq_auth_backend_http's four questions (POST, form-encoded; relay/src/ingress/rabbitmq-broker.ts
 * makes the broker config), answered from the registry and shared/src/gateway-contract.ts:
 *
 * - user: a gateway logs in with its id and secret, over MQTT only (the broker sends the MQTT
 *   client id; AMQP logins carry none) and with its id as client id, so it cannot knock another
 *   gateway off by taking its client id, and only once this instance has declared its queue
 *   (`queueDeclared`). Read from storage, not this instance's cache, so a
 *   revocation by any instance counts. The relay's own user checks against its configured password.
 *   With ingress.rabbitmq.management, its answer carries the `administrator` tag (see relayTags).
 * - vhost: the configured one only.
 * - resource: a gateway may write to amq.topic (the topic check decides the key); the relay user
 *   may use its queue and its dead-letter queue, read (bind to) amq.topic and write the default
 *   exchange (its queue dead-letters through it). Nothing else.
 * - topic: rabbitmqTopicAnswer, and the gateway must not be revoked.
 *
 * Not an open oracle: these routes would otherwise tell anyone whether a gateway secret is right.
 * The path carries a secret only the broker's config holds (a wrong one gets a plain 404, like
 * any unknown path), `allowFrom` can pin the callers to the broker nodes, and failed logins are
 * throttled per gateway with the embedded ingress's limits (relay/src/ingress/embedded.ts). Nothing
 * here logs the URL (it holds the secret).
 */
export async function brokerAuthRoutes(app: FastifyInstance, opts: BrokerAuthOptions, deps: { registry: Registry; logger?: Logger | undefined }): Promise<void> {
  const stats = opts.stats;
  const logins = new LoginThrottle(opts.logins, opts.now ?? Date.now);
  const log = deps.logger?.child({ component: 'broker-auth' });
  // The tag is a trade-off: `administrator` lets its holder do anything through the management
  // API (close any connection, delete queues, set policies), not only close revoked gateways'
  // connections (relay/src/ingress/rabbitmq-management.ts); RabbitMQ 3.10 has no narrower tag for
  // that ("monitoring" lists, only "administrator" closes others'). It adds little: this user's
  // password is already the relay's, and the relay answers every login and permission of the
  // broker (these routes), so whoever holds the relay's config controls the broker's clients
  // anyway. Granted only when management is configured; keep the management listener on the
  // brokers' private network (docs/relay-deployment.md).
  const relayTags = opts.relayManagesConnections ? ' administrator' : '';
  const answer = (reply: FastifyReply, ok: boolean, tags = ''): FastifyReply => {
    if (ok) stats.allowed++;
    else stats.denied++;
    return reply.type('text/plain').header('cache-control', 'no-store').send(ok ? `allow${tags}` : 'deny');
  };
  const relayPaths = new Set([opts.queue, `${opts.queue}.dead`]);
  let notDeclaredLogged = false;

  const questions = {
    user: async (q: z.output<typeof userQ>): Promise<boolean> => {
      if (q.username === opts.relayUser) {
        // A constant-time compare costs nothing: no throttle needed (and none to lock the relay out).
        return sameSecret(q.password, opts.relayPassword);
      }
      if (!isDotSafeGatewayId(q.username) || q.client_id !== q.username) {
        log?.warn({ username: q.username.slice(0, 64), clientId: q.client_id?.slice(0, 64) }, 'refused broker login: a gateway logs in over MQTT with its id as client id');
        return false;
      }
      if (!opts.queueDeclared()) {
        stats.queueNotDeclared++;
        // Once per stretch, not per login: a whole fleet may be knocking while the cluster is out of reach.
        if (!notDeclaredLogged) log?.warn({ queue: opts.queue }, 'refusing gateway logins until this relay has declared its queue on the rabbitmq cluster (what a gateway published now would be acknowledged and dropped); see ready for why it has not');
        notDeclaredLogged = true;
        return false;
      }
      notDeclaredLogged = false;
      // The broker does not say where a login comes from, so failures count per gateway id (as
      // the address too). Past the burst, guesses are refused without computing scrypt, but a
      // secret verified before still gets in: whoever guesses cannot lock the real gateway out.
      const throttled = !logins.attempt(q.username, q.username);
      if (throttled) stats.throttled++;
      let gw;
      try {
        gw = await deps.registry.authenticateFresh(q.username, q.password, { onlyKnown: throttled });
      } catch (err) {
        if (!throttled) logins.succeeded(q.username, q.username); // not the gateway's failure
        log?.error({ err: (err as Error).message }, 'registry lookup failed; refusing the login');
        return false;
      }
      if (!gw) {
        log?.warn({ username: q.username.slice(0, 64), throttled }, throttled ? 'refused broker login unchecked: too many failed logins; try again later' : 'refused broker login: unknown or revoked gateway, or wrong secret');
        return false;
      }
      if (!throttled) logins.succeeded(q.username, q.username);
      return true;
    },
    vhost: async (q: z.output<typeof vhostQ>): Promise<boolean> => q.vhost === opts.vhost,
    resource: async (q: z.output<typeof resourceQ>): Promise<boolean> => {
      if (q.vhost !== opts.vhost) return false;
      if (q.username === opts.relayUser) {
        if (q.resource === 'queue') return relayPaths.has(q.name);
        // Read amq.topic: bind the queue to it. Write the default exchange: declaring a queue that
        // dead-letters through it (to `{queue}.dead`) needs that.
        if (q.resource !== 'exchange') return false;
        return (q.name === 'amq.topic' && q.permission === 'read') || (q.name === 'amq.default' && q.permission === 'write');
      }
      return q.resource === 'exchange' && q.name === 'amq.topic' && q.permission === 'write' && isDotSafeGatewayId(q.username);
    },
    topic: async (q: z.output<typeof topicQ>): Promise<boolean> => {
      if (q.vhost !== opts.vhost || rabbitmqTopicAnswer(q, { relayUser: opts.relayUser }) !== 'allow') return false;
      return q.username === opts.relayUser || (await deps.registry.active(q.username));
    },
  };
  const schemas = { user: userQ, vhost: vhostQ, resource: resourceQ, topic: topicQ } as const;

  await app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    for (const what of Object.keys(schemas) as (keyof typeof schemas)[]) {
      scope.post(`${RABBITMQ_AUTH_PREFIX}/:secret/${what}`, async (req: FastifyRequest, reply) => {
        const secret = (req.params as { secret?: unknown }).secret;
        if (typeof secret !== 'string' || !sameSecret(secret, opts.secret) || (opts.allowFrom.length > 0 && !opts.allowFrom.includes(req.ip))) {
          stats.strangers++;
          log?.warn({ address: req.ip, what }, 'broker auth request without the right secret or from an address not allowed');
          return sendRefusal(reply, new TuError('NOT_FOUND'));
        }
        const parsed = schemas[what].safeParse(req.body ?? {});
        if (!parsed.success) {
          stats.denied++;
          const issue = parsed.error.issues[0];
          return sendRefusal(reply, new TuError('INVALID_REQUEST', `broker ${what} check: ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`));
        }
        try {
          const ok = await (questions[what] as (q: unknown) => Promise<boolean>)(parsed.data);
          // The user answer carries the tags ("allow administrator"); the other answers have none.
          return answer(reply, ok, what === 'user' && (parsed.data as { username: string }).username === opts.relayUser ? relayTags : '');
        } catch (err) {
          log?.error({ err: (err as Error).message, what }, 'broker auth check failed; denying');
          return answer(reply, false);
        }
      });
    }
  });
}
