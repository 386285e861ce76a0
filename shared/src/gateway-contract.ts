import { z } from 'zod';
import { EVENT_TYPES, type EventType } from './catalog.js';
import { topicMatches, topics } from './topics.js';

/**
 * The gateway ↔ relay contract (issue 11): what a gateway may do at the relay's broker, in one
 * place. The uplink (agent/src/uplink/forwarder.ts) builds its topics here, the relay's embedded
 * ingress (relay/src/ingress/embedded.ts) enforces it here, the external ingress
 * (relay/src/ingress/external.ts) subscribes to what it names, and the broker permissions of an
 * external broker (a Mosquitto ACL file, RabbitMQ auth-backend answers, NATS permissions) are
 * generated from it below. relay/README.md's contract section is generated from it too
 * (scripts/docs.ts), and test/contracts.gateway.test.ts fails when any of them disagrees.
 *
 * The gateway's own local bus rules (agent/src/broker/acl.ts) are a different contract.
 */

/** One thing a gateway may publish. `retain`: whether the broker must refuse, or may accept, a retained message. */
export interface GatewayGrant {
  kind: 'event' | 'status';
  /** MQTT topic filter; `gw` stands for the gateway's own id. */
  filter: string;
  qos: 1;
  retain: 'refused' | 'allowed';
}

/** What gateway `gw` may publish: its own events (one level, any type; the relay validates the type) and its status. */
export const gatewayPublishGrants = (gw: string): GatewayGrant[] => [
  { kind: 'event', filter: topics.anyEvent(gw), qos: 1, retain: 'refused' },
  { kind: 'status', filter: topics.gatewayStatus(gw), qos: 1, retain: 'allowed' },
];

/**
 * A gateway subscribes to nothing at the relay. The one message that flows from the relay to a
 * gateway, its limits (`gatewayTopics.limits`, below), is sent unasked by the embedded ingress.
 */
export const gatewaySubscribeGrants = (_gw: string): string[] => [];

/** What the relay's own (privileged) client reads from an external broker: every gateway's grants with `+` for the gateway. */
export const relaySubscriptions = (): string[] => gatewayPublishGrants('+').map((g) => g.filter);

/** Every event type crosses the uplink (the forwarder observes `all` on the local bus); commands and presence stay local. */
export const GATEWAY_EVENT_TYPES: readonly EventType[] = EVENT_TYPES;

/** The topics a gateway publishes on. */
export const gatewayTopics = {
  event: (gw: string, type: EventType): string => topics.event(gw, type),
  status: (gw: string): string => topics.gatewayStatus(gw),
  limits: (gw: string): string => topics.gatewayLimits(gw),
};

/**
 * What the relay's embedded ingress tells a gateway right after its CONNACK, on
 * `tu/{gw}/sys/limits` (QoS 0, not retained, unasked: the gateway subscribes to nothing).
 *
 * Why: a publish over `ingress.maxPayloadBytes` is refused by closing the connection
 * (relay/src/ingress/embedded.ts: the packet guard cuts it before the packet is read, or
 * authorizePublish refuses it and aedes disconnects); MQTT 3.1.1 has no PUBACK reason code and
 * no CONNACK property to say why. To the gateway that is a lost connection like any other, so it
 * re-sent the same event after every reconnect and every later event waited behind it. Told the
 * limit, the uplink sets an event over it aside instead of sending it
 * (agent/src/uplink/event-limit.ts). Unknown fields are ignored, so a later relay may say more.
 */
export const relayLimitsSchema = z.object({
  /** The largest event payload the relay takes (its ingress.maxPayloadBytes, relay/src/config.ts). */
  maxPayloadBytes: z.number().int().min(1024).max(16 * 1024 * 1024),
});
export type RelayLimits = z.output<typeof relayLimitsSchema>;

export const relayLimitsPayload = (l: RelayLimits): string => JSON.stringify(relayLimitsSchema.parse(l));

/** The relay's limits from a `tu/{gw}/sys/limits` payload; undefined when it is not one (never throws: it comes from the network). */
export function parseRelayLimits(payload: Buffer | string): RelayLimits | undefined {
  try {
    const r = relayLimitsSchema.safeParse(JSON.parse(payload.toString()));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/** The retained status payloads (online on connect; offline as last will and on a clean stop). */
export const gatewayStatusPayload = (online: boolean): string => JSON.stringify({ status: online ? 'online' : 'offline' });

/** `{"status":"online"|"offline"}` → boolean; undefined when malformed. */
export function parseGatewayStatus(payload: Buffer | string): boolean | undefined {
  try {
    const v = JSON.parse(payload.toString()) as { status?: unknown };
    if (v.status === 'online') return true;
    if (v.status === 'offline') return false;
  } catch {
    // malformed
  }
  return undefined;
}

/** A gateway id usable in topics: no MQTT level separator or wildcard. */
export const isTopicSafeGatewayId = (gw: string): boolean => gw.length > 0 && !/[/+#]/.test(gw) && !gw.includes(String.fromCharCode(0));

export type PublishCheck = { ok: true; kind: 'event' | 'status' } | { ok: false; reason: string };

/**
 * Whether gateway `gw` may publish on `topic` (retained or not). The one decision every
 * enforcement point takes: the embedded ingress calls it, the generated broker permissions encode it.
 */
export function checkGatewayPublish(gw: string, topic: string, retain: boolean): PublishCheck {
  const own = `tu/${gw}/`;
  if (!isTopicSafeGatewayId(gw) || !topic.startsWith(own)) return { ok: false, reason: `topic ${topic.slice(0, 200)} is not under ${own}` };
  if (topic.includes('+') || topic.includes('#')) return { ok: false, reason: 'a publish topic may not hold wildcards' };
  // An empty level (`tu/gw/evt/`) would match `+`: it names no event type.
  if (topic.split('/').includes('')) return { ok: false, reason: `topic ${topic.slice(0, 200)} has an empty level` };
  for (const g of gatewayPublishGrants(gw)) {
    if (!topicMatches(g.filter, topic)) continue;
    if (retain && g.retain === 'refused') return { ok: false, reason: `${g.kind}s must not be retained` };
    return { ok: true, kind: g.kind };
  }
  const [evt, status] = gatewayPublishGrants(gw);
  return { ok: false, reason: `topic ${topic.slice(0, 200)} is neither ${evt!.filter.replace('+', '{type}')} nor ${status!.filter}` };
}

// ---------------------------------------------------------------------------------------------
// Broker permissions generated from the contract.

/**
 * A Mosquitto ACL file: the relay's user reads every gateway's events and status; each gateway
 * (`%u`, its username = its id) writes only its own. Mosquitto's ACL cannot refuse a retained
 * event; the relay ignores retain on the external path (relay/src/ingress/external.ts stores
 * what it receives once, deduplicated by event id).
 */
export function mosquittoAcl(relayUser: string): string {
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(relayUser)) throw new Error(`relay user ${relayUser.slice(0, 64)} is not a plain name`);
  return [
    `user ${relayUser}`,
    ...relaySubscriptions().map((f) => `topic read ${f}`),
    '',
    ...gatewayPublishGrants('%u').map((g) => `pattern write ${g.filter}`),
    '',
  ].join('\n');
}

/** A gateway id usable with RabbitMQ and NATS too: their MQTT topics become dotted names, so no `.`, `*`, `>` or spaces. */
export const isDotSafeGatewayId = (gw: string): boolean => isTopicSafeGatewayId(gw) && !/[.*>\s]/.test(gw);

/**
 * MQTT topic → RabbitMQ routing key, as its MQTT plugin translates (rabbit_mqtt_util: `/` → `.`,
 * `+` → `*`; a `.` inside a level stays, so `tu/gw/evt/analysis.completed` becomes the key
 * `tu.gw.evt.analysis.completed`).
 */
export const rabbitmqRoutingKey = (topic: string): string => topic.replace(/\//g, '.').replace(/\+/g, '*');

/**
 * The relay's binding key on amq.topic for one of its subscriptions: as `rabbitmqRoutingKey`, but
 * the event type, a run of dotted words (`analysis.completed` is two), is bound with `#`:
 * `tu/+/evt/+` → `tu.*.evt.#` (`tu.*.evt.*` would match no event at all).
 */
export const rabbitmqBindingKey = (filter: string): string => {
  const key = rabbitmqRoutingKey(filter);
  return key.split('.')[2] === 'evt' && key.endsWith('.*') ? `${key.slice(0, -1)}#` : key;
};

/** The binding keys of the relay's queue (its subscriptions). */
export const rabbitmqRelayBindingKeys = (): string[] => relaySubscriptions().map(rabbitmqBindingKey);

/**
 * Routing key → the topic the contract judges. An event type holds dots, so under `evt` every
 * word after the third is the type (the relay reads the type back the same way).
 */
export function topicOfRabbitmqKey(key: string): string {
  const w = key.split('.');
  return w[2] === 'evt' && w.length > 4 ? [...w.slice(0, 3), w.slice(3).join('.')].join('/') : w.join('/');
}

/**
 * The answer to a `rabbitmq_auth_backend_http` topic check (its `topic_path` request: username,
 * resource `topic`, exchange `name`, `permission` read|write, `routing_key`). A gateway may write
 * what checkGatewayPublish allows it (judged on the topic the key stands for) and read nothing; the
 * relay user may bind with its binding keys (rabbitmqRelayBindingKeys) and write nothing. Another exchange: denied.
 * RabbitMQ's topic check does not see the retain flag.
 */
export function rabbitmqTopicAnswer(
  q: { username: string; resource: string; name: string; permission: string; routing_key: string },
  opts: { relayUser: string; exchange?: string },
): 'allow' | 'deny' {
  if (q.resource !== 'topic' || q.name !== (opts.exchange ?? 'amq.topic')) return 'deny';
  if (q.username === opts.relayUser) {
    return q.permission === 'read' && rabbitmqRelayBindingKeys().includes(q.routing_key) ? 'allow' : 'deny';
  }
  if (q.permission !== 'write' || !isDotSafeGatewayId(q.username) || /[*#]/.test(q.routing_key)) return 'deny';
  return checkGatewayPublish(q.username, topicOfRabbitmqKey(q.routing_key), false).ok ? 'allow' : 'deny';
}

/**
 * MQTT topic or filter → NATS subject, as nats-server's MQTT support converts it: `/` → `.`,
 * `+` → `*`, `#` → `>`, and a `.` inside a level → `//` (so an event type stays one token).
 * Empty levels are not converted here (the contract refuses them).
 */
export const natsSubject = (topic: string): string =>
  topic
    .split('/')
    .map((l) => (l === '+' ? '*' : l === '#' ? '>' : l.replace(/\./g, '//')))
    .join('.');

export interface NatsPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[]; deny: string[] };
}

/**
 * NATS user permissions (a user's `permissions` block, or a user JWT's pub/sub) for a gateway or
 * for the relay, from the same grants. A gateway subscribes to nothing (`>` denied).
 */
export function natsPermissions(who: { gateway: string } | { relay: true }): NatsPermissions {
  if ('relay' in who) return { publish: { allow: [] }, subscribe: { allow: relaySubscriptions().map(natsSubject), deny: [] } };
  if (!isDotSafeGatewayId(who.gateway)) throw new Error(`gateway id ${who.gateway.slice(0, 64)} cannot be a NATS subject token (no . * > or spaces)`);
  return { publish: { allow: gatewayPublishGrants(who.gateway).map((g) => natsSubject(g.filter)) }, subscribe: { allow: [], deny: ['>'] } };
}

/** NATS subject matching (`*` one token, `>` one or more): does `pattern` match `subject`? */
export function natsMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return i < s.length;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Whether NATS permissions let a client publish on `subject` (deny wins). */
export const natsAllows = (perm: { allow: string[]; deny?: string[] }, subject: string): boolean =>
  !(perm.deny ?? []).some((p) => natsMatches(p, subject)) && perm.allow.some((p) => natsMatches(p, subject));

/** The contract as prose, for relay/README.md (generated by `npm run docs:generate`, scripts/docs.ts). */
export function gatewayContractMarkdown(): string {
  const [evt, status] = gatewayPublishGrants('{own}');
  const example = 'gw-0042';
  return [
    `- A gateway may publish only \`${evt!.filter.replace('+', '{type}')}\` (QoS ${evt!.qos}, not retained; payload = the CloudEvent;`,
    `  all ${GATEWAY_EVENT_TYPES.length} event types of the catalogue cross) and \`${status!.filter}\` (retained; \`${gatewayStatusPayload(true)}\``,
    `  on connect, last will \`${gatewayStatusPayload(false)}\`); it may subscribe to nothing.`,
    `- The one message from the relay to a gateway: right after CONNACK, unasked (QoS 0), the embedded ingress`,
    `  sends \`${topics.gatewayLimits('{own}')}\` \`${relayLimitsPayload({ maxPayloadBytes: 512 * 1024 })}\` (its ingress.maxPayloadBytes).`,
    '  A publish over it closes the connection (MQTT 3.1.1 has no reason code), so the uplink sets larger events',
    "  aside instead of sending them. An external broker sends nothing: keep the gateways' uplink.maxEventBytes",
    "  at or below the broker's own limit.",
    `- The relay reads ${relaySubscriptions()
      .map((f) => `\`${f}\``)
      .join(' and ')} (on an external broker, with a persistent session).`,
    "- Mosquitto ACL (`mosquittoAcl('relay')`):",
    '',
    '```',
    mosquittoAcl('relay').trimEnd(),
    '```',
    '',
    `- NATS permissions of gateway \`${example}\`: \`${JSON.stringify(natsPermissions({ gateway: example }))}\`;`,
    `  of the relay: \`${JSON.stringify(natsPermissions({ relay: true }))}\`.`,
    '- RabbitMQ (`rabbitmq_auth_backend_http` topic checks on `amq.topic`, `rabbitmqTopicAnswer`): a gateway may',
    `  write \`${rabbitmqRoutingKey(topics.event(example, 'analysis.completed'))}\`, \`${rabbitmqRoutingKey(status!.filter.replace('{own}', example))}\` and its other event keys`,
    `  under its own username and nothing else; the relay user may bind its queue with ${rabbitmqRelayBindingKeys()
      .map((k) => `\`${k}\``)
      .join(' and ')}.`,
    '- With RabbitMQ or NATS a gateway id may not hold `.`, `*`, `>` or spaces (their topics are dotted names).',
  ].join('\n');
}
