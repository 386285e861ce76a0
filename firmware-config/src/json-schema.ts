import { z } from 'zod';
import { agentConfigSchema } from './schema.js';

/** JSON Schema of the agent configuration file (what a user writes: defaults optional). */
export function buildConfigJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://trackunit.example/tu-edge/agent-config.schema.json',
    title: 'TU Edge agent configuration',
    ...(z.toJSONSchema(agentConfigSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>),
  };
}
