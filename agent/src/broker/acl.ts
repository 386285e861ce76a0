import { commandsHandledBy, COMMAND_TYPES, eventsProducedBy, filterCovers, topicMatches, topics } from '@tu/shared';
import type { Principal } from './credentials.js';

export interface Acl {
  publish: string[];
  subscribe: string[];
}

/**
 * Topic ACL of a principal (DESIGN §3, issue 2):
 * - the orchestrator alone publishes commands;
 * - a service publishes only its own events, presence and dead letters, and receives
 *   only the commands addressed to its own instance;
 * - observers (UI, uplink) subscribe to events and nothing else.
 */
export function aclFor(p: Principal, gatewayId: string, clientId: string): Acl {
  const evt = topics.allEvents(gatewayId);
  if (p.role === 'observer') return { publish: [], subscribe: [evt] };
  const own = {
    publish: [
      ...eventsProducedBy(p.service).map((t) => topics.event(gatewayId, t)),
      topics.presence(gatewayId, p.service, clientId),
      topics.deadLetter(gatewayId, p.service),
    ],
    subscribe: [evt, ...commandsHandledBy(p.service).map((t) => topics.command(gatewayId, t, clientId))],
  };
  if (p.role === 'orchestrator') {
    own.publish.push(...COMMAND_TYPES.map((t) => topics.commandToAny(gatewayId, t)));
    own.subscribe.push(topics.allPresence(gatewayId), topics.allDeadLetters(gatewayId));
  }
  return own;
}

export const mayPublish = (acl: Acl, topic: string): boolean =>
  !topic.includes('+') && !topic.includes('#') && acl.publish.some((f) => topicMatches(f, topic));

export const maySubscribe = (acl: Acl, filter: string): boolean => acl.subscribe.some((a) => filterCovers(a, filter));
