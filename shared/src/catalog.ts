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
  nameplateRead,
  nameplateRequest,
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
  'nameplate-service',
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
  'analysis.nameplate.request': { kind: 'command', schema: nameplateRequest, producer: 'svc-analysis-orchestrator', handler: 'nameplate-service', summary: 'Read the machine nameplate on the photo (no service ships yet).' },
  'nameplate.read': { kind: 'event', schema: nameplateRead, producer: 'nameplate-service', summary: 'Nameplate text and the record fields read from it.' },
  'nameplate.failed': { kind: 'event', schema: stepFailed, producer: 'nameplate-service', summary: 'Reading the nameplate failed, with a reason.' },
  'analysis.completed': { kind: 'event', schema: analysisCompleted, producer: 'svc-analysis-orchestrator', summary: 'All steps done: the steps and their times; the results are added where the event leaves the gateway (uplink, UI).' },
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

/**
 * Each analysis step: the command that starts it and the events that end it. Adding a step is an
 * entry here (plus its messages above) and an entry in the analysis plan (shared/src/plan.ts);
 * the orchestrator has no per-step code.
 */
export const STEPS = {
  recognition: { command: 'analysis.recognition.request', completed: 'recognition.completed', failed: 'recognition.failed', service: 'svc-ai-vision-adapter' },
  comparison: { command: 'analysis.comparison.request', completed: 'comparison.completed', failed: 'comparison.failed', service: 'comparison-service' },
  metadata: { command: 'analysis.metadata.request', completed: 'metadata.sorted', failed: 'metadata.failed', service: 'metadata-service' },
  nameplate: { command: 'analysis.nameplate.request', completed: 'nameplate.read', failed: 'nameplate.failed', service: 'nameplate-service' },
} as const satisfies Record<StepName, { command: CommandType; completed: EventType; failed: EventType; service: ServiceName }>;

export type StepDef = (typeof STEPS)[StepName];
export type StepCompletedType = StepDef['completed'];
export type StepFailedType = StepDef['failed'];

/** Events a service may publish (it is their producer). */
export const eventsProducedBy = (service: ServiceName): EventType[] => EVENT_TYPES.filter((t) => catalog[t].producer === service);
/** Commands a service's instances handle. */
export const commandsHandledBy = (service: ServiceName): CommandType[] =>
  COMMAND_TYPES.filter((t) => (catalog[t] as Entry).handler === service);

const STEP_OF_EVENT = new Map<EventType, { step: StepName; outcome: 'completed' | 'failed' }>(
  (Object.entries(STEPS) as [StepName, StepDef][]).flatMap(([step, def]) => [
    [def.completed, { step, outcome: 'completed' as const }],
    [def.failed, { step, outcome: 'failed' as const }],
  ]),
);
const STEP_OF_COMMAND = new Map<CommandType, StepName>((Object.entries(STEPS) as [StepName, StepDef][]).map(([step, def]) => [def.command, step]));

/** Which step an event ends, if any. */
export const stepOfEvent = (type: EventType): { step: StepName; outcome: 'completed' | 'failed' } | undefined => STEP_OF_EVENT.get(type);
/** Which step a command starts, if any. */
export const stepOfCommand = (type: CommandType): StepName | undefined => STEP_OF_COMMAND.get(type);
