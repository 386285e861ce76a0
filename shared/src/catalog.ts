import type { z } from 'zod';
import {
  analysisCompleted,
  analysisFailed,
  analysisStarted,
  comparisonCompleted,
  comparisonRequest,
  imageUploaded,
  metadataRequest,
  metadataSorted,
  recognitionCompleted,
  recognitionRequest,
  stepFailed,
} from './schemas/messages.js';
import { recognitionLabelled } from './schemas/teach.js';
import type { StepName } from './schemas/common.js';

/** The services of DESIGN §2; `intake` is the agent's HTTP intake (photos, and technicians' labels). */
export const SERVICES = [
  'intake',
  'svc-analysis-orchestrator',
  'svc-ai-vision-adapter',
  'comparison-service',
  'metadata-service',
] as const;
export type ServiceName = (typeof SERVICES)[number];

interface Entry {
  kind: 'event' | 'command';
  schema: z.ZodType;
  /** The one service allowed to publish it. */
  producer: ServiceName;
  /** For commands: the service whose instances handle it. */
  handler?: ServiceName;
  summary: string;
}

/**
 * THE public contract: every message type, its kind, schema and producer.
 * Topics, ACLs and the generated AsyncAPI/JSON Schema documents all derive from this map.
 */
export const catalog = {
  'tu.image.uploaded': { kind: 'event', schema: imageUploaded, producer: 'intake', summary: 'A photo was stored in the blob store and awaits analysis.' },
  'analysis.started': { kind: 'event', schema: analysisStarted, producer: 'svc-analysis-orchestrator', summary: 'The orchestrator started an analysis.' },
  'analysis.recognition.request': { kind: 'command', schema: recognitionRequest, producer: 'svc-analysis-orchestrator', handler: 'svc-ai-vision-adapter', summary: 'Recognise the machine on the photo.' },
  'analysis.comparison.request': { kind: 'command', schema: comparisonRequest, producer: 'svc-analysis-orchestrator', handler: 'comparison-service', summary: 'Compare the photo with the registered machine and earlier photos.' },
  'analysis.metadata.request': { kind: 'command', schema: metadataRequest, producer: 'svc-analysis-orchestrator', handler: 'metadata-service', summary: 'Extract and sort metadata into the machine record.' },
  'recognition.completed': { kind: 'event', schema: recognitionCompleted, producer: 'svc-ai-vision-adapter', summary: 'Recognition result.' },
  'recognition.failed': { kind: 'event', schema: stepFailed, producer: 'svc-ai-vision-adapter', summary: 'Recognition failed, with a reason.' },
  'comparison.completed': { kind: 'event', schema: comparisonCompleted, producer: 'comparison-service', summary: 'Comparison verdict and scores.' },
  'comparison.failed': { kind: 'event', schema: stepFailed, producer: 'comparison-service', summary: 'Comparison failed, with a reason.' },
  'metadata.sorted': { kind: 'event', schema: metadataSorted, producer: 'metadata-service', summary: 'Metadata extracted and sorted into record fields.' },
  'metadata.failed': { kind: 'event', schema: stepFailed, producer: 'metadata-service', summary: 'Metadata extraction failed, with a reason.' },
  'analysis.completed': { kind: 'event', schema: analysisCompleted, producer: 'svc-analysis-orchestrator', summary: 'All steps done; carries every result.' },
  'analysis.failed': { kind: 'event', schema: analysisFailed, producer: 'svc-analysis-orchestrator', summary: 'The analysis ended without a result; names the step and reason.' },
  'recognition.labelled': { kind: 'event', schema: recognitionLabelled, producer: 'intake', summary: 'A technician confirmed or corrected the recognised machine type of a photo (a labelled example for the head).' },
} as const satisfies Record<string, Entry>;

export type Catalog = typeof catalog;
export type MessageType = keyof Catalog;
export type EventType = { [K in MessageType]: Catalog[K]['kind'] extends 'event' ? K : never }[MessageType];
export type CommandType = { [K in MessageType]: Catalog[K]['kind'] extends 'command' ? K : never }[MessageType];
export type DataOf<T extends MessageType> = z.output<Catalog[T]['schema']>;
export type InputOf<T extends MessageType> = z.input<Catalog[T]['schema']>;

export const MESSAGE_TYPES = Object.keys(catalog) as MessageType[];
export const EVENT_TYPES = MESSAGE_TYPES.filter((t): t is EventType => catalog[t].kind === 'event');
export const COMMAND_TYPES = MESSAGE_TYPES.filter((t): t is CommandType => catalog[t].kind === 'command');

export const isMessageType = (t: string): t is MessageType => Object.hasOwn(catalog, t);
export const isEventType = (t: string): t is EventType => isMessageType(t) && catalog[t].kind === 'event';
export const isCommandType = (t: string): t is CommandType => isMessageType(t) && catalog[t].kind === 'command';

/** Each analysis step: the command that starts it and the events that end it. */
export const STEPS = {
  recognition: { command: 'analysis.recognition.request', completed: 'recognition.completed', failed: 'recognition.failed', service: 'svc-ai-vision-adapter' },
  comparison: { command: 'analysis.comparison.request', completed: 'comparison.completed', failed: 'comparison.failed', service: 'comparison-service' },
  metadata: { command: 'analysis.metadata.request', completed: 'metadata.sorted', failed: 'metadata.failed', service: 'metadata-service' },
} as const satisfies Record<StepName, { command: CommandType; completed: EventType; failed: EventType; service: ServiceName }>;

export type StepDef = (typeof STEPS)[StepName];
export type StepCompletedType = StepDef['completed'];
export type StepFailedType = StepDef['failed'];

/** Events a service may publish (it is their producer). */
export const eventsProducedBy = (service: ServiceName): EventType[] => EVENT_TYPES.filter((t) => catalog[t].producer === service);
/** Commands a service's instances handle. */
export const commandsHandledBy = (service: ServiceName): CommandType[] =>
  COMMAND_TYPES.filter((t) => (catalog[t] as Entry).handler === service);

/** Which step an event ends, if any. */
export function stepOfEvent(type: EventType): { step: StepName; outcome: 'completed' | 'failed' } | undefined {
  for (const [step, def] of Object.entries(STEPS) as [StepName, StepDef][]) {
    if (def.completed === type) return { step, outcome: 'completed' };
    if (def.failed === type) return { step, outcome: 'failed' };
  }
  return undefined;
}
