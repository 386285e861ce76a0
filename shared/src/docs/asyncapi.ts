import { z } from 'zod';
import { catalog, MESSAGE_TYPES, STEPS, type MessageType } from '../catalog.js';
import { envelopeSchema } from '../envelope.js';
import { presenceSchema } from '../bus/presence.js';

type Json = Record<string, unknown>;

/** The full on-the-wire schema of one message: the CloudEvents envelope with its typed data. */
export function messageSchema(type: MessageType): z.ZodType {
  return envelopeSchema.extend({ type: z.literal(type), data: catalog[type].schema });
}

const toJson = (s: z.ZodType): Json => z.toJSONSchema(s, { target: 'draft-2020-12', io: 'output', unrepresentable: 'any' }) as Json;

/** JSON Schema (2020-12) of every message, keyed by message type. */
export function buildJsonSchemas(): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const t of MESSAGE_TYPES) {
    out[t] = { $id: `https://trackunit.example/tu-edge/schemas/${t}.json`, title: t, description: catalog[t].summary, ...toJson(messageSchema(t)) };
  }
  out['sys.presence'] = { $id: 'https://trackunit.example/tu-edge/schemas/sys.presence.json', title: 'sys.presence', description: 'Retained handler presence; an empty retained payload (last will) means gone.', ...toJson(presenceSchema) };
  return out;
}

/** AsyncAPI 3.0 document of the gateway bus, generated from the catalogue. */
export function buildAsyncApi(): Json {
  const channels: Json = {};
  const operations: Json = {};
  const messages: Json = {};
  const gatewayParam = { gatewayId: { description: 'Gateway identity ([A-Za-z0-9_-]{1,64}).' } };
  for (const t of MESSAGE_TYPES) {
    const entry = catalog[t];
    const key = t.replace(/\./g, '_');
    messages[key] = {
      name: t,
      title: t,
      summary: entry.summary,
      contentType: 'application/cloudevents+json',
      payload: { $ref: `./schemas/${t}.json` },
    };
    const isCmd = entry.kind === 'command';
    channels[key] = {
      address: isCmd ? `tu/{gatewayId}/cmd/${t}/{instanceId}` : `tu/{gatewayId}/evt/${t}`,
      description: isCmd
        ? `Command, point-to-point: sent by ${entry.producer} to exactly one live ${(entry as { handler?: string }).handler} instance.`
        : `Event, broadcast: published by ${entry.producer}.`,
      parameters: isCmd ? { ...gatewayParam, instanceId: { description: 'The handler instance (its MQTT client id), chosen from retained presence.' } } : gatewayParam,
      messages: { [key]: { $ref: `#/components/messages/${key}` } },
    };
    operations[`publish_${key}`] = {
      action: 'send',
      channel: { $ref: `#/channels/${key}` },
      summary: `${entry.producer} publishes ${t}`,
      messages: [{ $ref: `#/channels/${key}/messages/${key}` }],
    };
  }
  channels['sys_presence'] = {
    address: 'tu/{gatewayId}/sys/presence/{service}/{instanceId}',
    description: 'Retained handler presence with a last will that clears it.',
    parameters: { ...gatewayParam, service: {}, instanceId: {} },
    messages: { presence: { $ref: '#/components/messages/presence' } },
  };
  channels['sys_deadletter'] = {
    address: 'tu/{gatewayId}/sys/deadletter/{service}',
    description: 'Messages a service rejected, with the reason (code, message), topic and a payload preview.',
    parameters: { ...gatewayParam, service: {} },
  };
  messages['presence'] = { name: 'sys.presence', contentType: 'application/json', payload: { $ref: './schemas/sys.presence.json' } };
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'TU Edge Analysis gateway bus',
      version: '1.0.0',
      description:
        'MQTT 3.1.1 bus of the gateway agent. Messages are CloudEvents 1.0 (structured JSON). ' +
        `Analysis steps: ${Object.entries(STEPS)
          .map(([s, d]) => `${s} (${d.command} → ${d.completed} | ${d.failed})`)
          .join('; ')}. Generated from shared/src/catalog.ts; do not edit.`,
    },
    defaultContentType: 'application/cloudevents+json',
    servers: { agent: { host: 'localhost:1884', protocol: 'mqtt', protocolVersion: '3.1.1', description: 'The agent’s embedded broker; every client authenticates.' } },
    channels,
    operations,
    components: { messages },
  };
}
