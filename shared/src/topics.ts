import { isCommandType, isEventType, type CommandType, type EventType, type ServiceName } from './catalog.js';

/**
 * The only place topic strings are built or parsed (DESIGN §3).
 *   events:    tu/{gw}/evt/{type}
 *   commands:  tu/{gw}/cmd/{type}/{instanceId}          (point-to-point: one instance)
 *   presence:  tu/{gw}/sys/presence/{service}/{instanceId}   (retained; cleared by last will)
 *   dead letters: tu/{gw}/sys/deadletter/{service}
 *   gateway status at the relay: tu/{gw}/sys/status (retained; shared/src/gateway-contract.ts)
 *   the relay's limits, told to a gateway: tu/{gw}/sys/limits (shared/src/gateway-contract.ts)
 * Where `gw` is `+` (or a broker's user placeholder such as Mosquitto's `%u`) these build filters.
 */
export const topics = {
  event: (gw: string, type: EventType) => `tu/${gw}/evt/${type}`,
  allEvents: (gw: string) => `tu/${gw}/evt/#`,
  /** One event of any type (one level): the filter a gateway's publish grant names. */
  anyEvent: (gw: string) => `tu/${gw}/evt/+`,
  command: (gw: string, type: CommandType, instanceId: string) => `tu/${gw}/cmd/${type}/${instanceId}`,
  /** A command of one type to any instance (the orchestrator's publish grant). */
  commandToAny: (gw: string, type: CommandType) => `tu/${gw}/cmd/${type}/+`,
  presence: (gw: string, service: ServiceName, instanceId: string) => `tu/${gw}/sys/presence/${service}/${instanceId}`,
  allPresence: (gw: string) => `tu/${gw}/sys/presence/#`,
  deadLetter: (gw: string, service: string) => `tu/${gw}/sys/deadletter/${service}`,
  allDeadLetters: (gw: string) => `tu/${gw}/sys/deadletter/#`,
  /** The gateway's online/offline status at the relay (retained; last will offline). */
  gatewayStatus: (gw: string) => `tu/${gw}/sys/status`,
  /** What the relay's embedded ingress tells a gateway right after it connects (its payload limit); sent unasked, never subscribed to. */
  gatewayLimits: (gw: string) => `tu/${gw}/sys/limits`,
} as const;

export type ParsedTopic =
  | { kind: 'event'; gatewayId: string; type: EventType }
  | { kind: 'command'; gatewayId: string; type: CommandType; instanceId: string }
  | { kind: 'presence'; gatewayId: string; service: string; instanceId: string }
  | { kind: 'deadletter'; gatewayId: string; service: string }
  | { kind: 'status'; gatewayId: string }
  | { kind: 'unknown'; topic: string };

export function parseTopic(topic: string): ParsedTopic {
  const p = topic.split('/');
  if (p[0] !== 'tu' || !p[1]) return { kind: 'unknown', topic };
  const gatewayId = p[1];
  if (p[2] === 'evt' && p.length === 4 && isEventType(p[3]!)) return { kind: 'event', gatewayId, type: p[3] };
  if (p[2] === 'cmd' && p.length === 5 && isCommandType(p[3]!) && p[4]) return { kind: 'command', gatewayId, type: p[3], instanceId: p[4] };
  if (p[2] === 'sys' && p[3] === 'presence' && p.length === 6 && p[4] && p[5]) return { kind: 'presence', gatewayId, service: p[4], instanceId: p[5] };
  if (p[2] === 'sys' && p[3] === 'deadletter' && p.length === 5 && p[4]) return { kind: 'deadletter', gatewayId, service: p[4] };
  if (p[2] === 'sys' && p[3] === 'status' && p.length === 4) return { kind: 'status', gatewayId };
  return { kind: 'unknown', topic };
}

const HASH = 0x23; // '#'
const PLUS = 0x2b; // '+'

/**
 * MQTT topic-filter matching (`+` one level, `#` the rest, also none: `a/#` matches `a`).
 * Walks both strings level by level without splitting them: it runs for every subscription
 * on every message a bus client receives, and for every allowed filter on every publish the
 * broker authorises (shared/src/bus/client.ts, agent/src/broker/acl.ts).
 */
export function topicMatches(filter: string, topic: string): boolean {
  let f = 0; // start of the current level in each string
  let t = 0;
  for (;;) {
    let fe = filter.indexOf('/', f);
    if (fe < 0) fe = filter.length;
    const level = fe - f;
    if (level === 1 && filter.charCodeAt(f) === HASH) return true;
    if (t > topic.length) return false; // the topic has fewer levels
    let te = topic.indexOf('/', t);
    if (te < 0) te = topic.length;
    if (!(level === 1 && filter.charCodeAt(f) === PLUS)) {
      if (te - t !== level) return false;
      for (let k = 0; k < level; k++) if (filter.charCodeAt(f + k) !== topic.charCodeAt(t + k)) return false;
    }
    if (fe === filter.length) return te === topic.length;
    f = fe + 1;
    t = te + 1;
  }
}

/** Whether every topic matched by `requested` is also matched by `allowed` (for subscribe ACLs). */
export function filterCovers(allowed: string, requested: string): boolean {
  const a = allowed.split('/');
  const r = requested.split('/');
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '#') return true;
    if (i >= r.length) return false;
    if (r[i] === '#') return false;
    if (a[i] === '+') continue;
    if (r[i] === '+' || a[i] !== r[i]) return false;
  }
  return a.length === r.length;
}
