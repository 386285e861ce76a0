import { z } from 'zod';
import { planIssues, planOrder, stepName, UTC_OFFSET_IN_USE, type StepName } from '@tu/shared';
import { listenersApart } from './listeners.js';
import { boundsInOrder, COMPARISON_DEFAULTS, QUALITY_DEFAULTS } from './thresholds.js';

const port = z.number().int().min(0).max(65535);
const host = z.string().min(1).max(255);
const ms = z.number().int().min(1).max(3_600_000);

/** The steps the default plan runs (the catalogue may know more: shared/src/catalog.ts `STEPS`). */
export const stepNames = ['recognition', 'comparison', 'metadata'] as const;

const retryField = {
  maxAttempts: z.number().int().min(1).max(20).describe('Attempts per step, including the first.'),
  initialDelayMs: z.number().int().min(0).max(600_000),
  maxDelayMs: z.number().int().min(0).max(3_600_000),
  multiplier: z.number().min(1).max(10),
  jitter: z.number().min(0).max(1).describe('Fraction of the delay randomised (+/-).'),
};
const DELAYS_IN_ORDER = 'maxDelayMs must be >= initialDelayMs';

export const retrySchema = z
  .object({
    maxAttempts: retryField.maxAttempts.default(3),
    initialDelayMs: retryField.initialDelayMs.default(250),
    maxDelayMs: retryField.maxDelayMs.default(10_000),
    multiplier: retryField.multiplier.default(2),
    jitter: retryField.jitter.default(0.2),
  })
  .strict()
  .refine((r) => r.maxDelayMs >= r.initialDelayMs, { message: DELAYS_IN_ORDER, path: ['maxDelayMs'] });
export type RetryPolicyConfig = z.output<typeof retrySchema>;

/** A step's own retry policy: any field of orchestrator.retry, the rest inherited from it. */
const retryOverride = z.object(retryField).partial().strict();

/** A plan entry as configured; merged over the default plan's entry of the same step. */
const planEntry = z
  .object({
    needs: z.array(stepName).max(stepName.options.length).optional().describe('Steps whose results this one reads; it starts once they completed.'),
    optional: z.boolean().optional().describe('true: when this step fails the analysis still completes, without its result (the failure is reported).'),
    timeoutMs: ms.optional().describe('Per-attempt timeout; with no live handler the step waits this long, then fails.'),
    retry: retryOverride.optional().describe('This step\'s retry policy, over orchestrator.retry.'),
  })
  .strict();

/** The default plan: metadata needs nothing of recognition, so it runs beside it; comparison reads the embedding. */
export const DEFAULT_PLAN: Readonly<Record<(typeof stepNames)[number], { needs: StepName[]; timeoutMs: number }>> = {
  recognition: { needs: [], timeoutMs: 30_000 },
  comparison: { needs: ['recognition'], timeoutMs: 10_000 },
  metadata: { needs: [], timeoutMs: 10_000 },
};

export interface PlanStep {
  step: StepName;
  needs: StepName[];
  optional: boolean;
  timeoutMs: number;
  retry: RetryPolicyConfig;
}

interface OrchestratorInput {
  steps?: StepName[] | undefined;
  plan: Partial<Record<StepName, z.output<typeof planEntry>>>;
  stepTimeoutMs?: Partial<Record<StepName, number>> | undefined;
  retry: RetryPolicyConfig;
}

/**
 * The configured plan as the orchestrator runs it: entries merged over DEFAULT_PLAN, only the
 * steps that run, in dependency order, each with its full retry policy. A plan with unknown
 * steps, needs outside it, cycles or a needed optional step is refused with the field named
 * (shared/src/plan.ts decides what is sound).
 */
function resolvePlan<T extends OrchestratorInput>(o: T, ctx: z.RefinementCtx): Omit<T, 'plan' | 'steps' | 'stepTimeoutMs'> & { plan: PlanStep[]; steps: StepName[] } {
  const merged = new Map<StepName, { needs?: StepName[] | undefined; optional?: boolean | undefined; timeoutMs?: number | undefined; retry?: Partial<RetryPolicyConfig> | undefined }>();
  for (const [step, d] of Object.entries(DEFAULT_PLAN) as [StepName, (typeof DEFAULT_PLAN)[keyof typeof DEFAULT_PLAN]][]) merged.set(step, { ...d });
  for (const [step, e] of Object.entries(o.plan) as [StepName, z.output<typeof planEntry>][]) merged.set(step, { ...merged.get(step), ...definedOnly(e) });
  const running = o.steps ?? [...merged.keys()];
  const plan: PlanStep[] = [];
  running.forEach((step, i) => {
    const e = merged.get(step);
    const timeoutMs = o.plan[step]?.timeoutMs ?? o.stepTimeoutMs?.[step] ?? e?.timeoutMs;
    if (!e || timeoutMs === undefined) {
      ctx.addIssue({ code: 'custom', path: e ? ['plan', step, 'timeoutMs'] : ['steps', i], message: `${step} has no plan entry with a timeoutMs: add orchestrator.plan.${step} = { "timeoutMs": ... }` });
      return;
    }
    const retry = { ...o.retry, ...definedOnly(e.retry ?? {}) };
    if (retry.maxDelayMs < retry.initialDelayMs) ctx.addIssue({ code: 'custom', path: ['plan', step, 'retry', 'maxDelayMs'], message: DELAYS_IN_ORDER });
    plan.push({ step, needs: e.needs ?? [], optional: e.optional ?? false, timeoutMs, retry });
  });
  for (const issue of planIssues(plan)) ctx.addIssue({ code: 'custom', path: ['plan', ...issue.path], message: issue.message });
  const { plan: _p, steps: _s, stepTimeoutMs: _t, ...rest } = o;
  if (plan.length !== running.length || planIssues(plan).length > 0) return { ...rest, plan, steps: running };
  const ordered = planOrder(plan);
  return { ...rest, plan: ordered, steps: ordered.map((p) => p.step) };
}

const definedOnly = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

const filePath = z.string().min(1).max(4096);

/**
 * Earlier photos of one machine a comparison scores, at most. Each comparison reads them all and
 * scores them on the agent's main thread: 2,000 rows of 1,280 floats take 40–130 ms and 10 MB on
 * this project's x64 bench machine (bench/comparison.bench.ts), several times that on a gateway's
 * ARM core; 10,000 took 0.3–0.5 s and 45 MB, the old bound of 100,000 seconds and 0.5 GB.
 */
export const HISTORY_PER_MACHINE_MAX = 2_000;

export const uplinkSchema = z
  .object({
    url: z
      .string()
      .regex(/^(mqtts?|wss?):\/\/[^\s]+$/, 'uplink.url: mqtt://, mqtts://, ws:// or wss:// URL')
      // A secret in the URL would be printed wherever the URL is (logs, health, `tu-agent config validate`).
      .refine((u) => !/^[a-z]+:\/\/[^/?#]*@/i.test(u), 'uplink.url must not hold a user name or password (user:secret@host): put the gateway secret in the file named by uplink.passwordFile (tu-agent provision --secret-file) and the user in uplink.username')
      .optional()
      .describe('Relay MQTT ingress (e.g. mqtt://relay:1885, wss://relay/mqtt). Absent: the uplink is disabled. Or TU_UPLINK_URL.'),
    username: z.string().min(1).max(256).optional().describe('MQTT username at the relay. Default: gatewayId.'),
    password: z.string().min(1).max(4096).optional().describe('Gateway secret at the relay. Set it with TU_UPLINK_PASSWORD or passwordFile, never in a committed file.'),
    passwordFile: filePath.optional().describe('File holding the gateway secret (first line).'),
    tls: z
      .object({
        ca: filePath
          .optional()
          .describe("PEM file of the CA(s) trusted for the relay certificate (mqtts/wss); then only these are trusted. Absent: Node's bundled public CAs, for a relay with a publicly issued certificate."),
        cert: filePath.optional().describe('PEM client certificate (mutual TLS).'),
        key: filePath.optional().describe('PEM private key of the client certificate.'),
        rejectUnauthorized: z.boolean().default(true).describe('Verify the relay certificate (leave true outside development).'),
      })
      .strict()
      .prefault({})
      .refine((t) => !t.cert === !t.key, { message: 'tls.cert and tls.key go together', path: ['key'] }),
    outbox: z
      .object({
        maxEvents: z.number().int().min(1).max(100_000_000).default(100_000).describe('Undelivered events kept on disk at most.'),
        maxBytes: z.number().int().min(1024).max(64 * 1024 * 1024 * 1024).default(256 * 1024 * 1024).describe('Undelivered payload bytes kept on disk at most.'),
        maxAgeMs: z.number().int().min(1000).max(365 * 24 * 3_600_000).default(7 * 24 * 3_600_000).describe('Undelivered events that have waited this long are dropped (counted as expired). Counted in time the agent ran, over restarts: setting the wall clock changes no age.'),
        whenFull: z.enum(['drop-oldest', 'refuse-new']).default('drop-oldest').describe('drop-oldest: make room by dropping the oldest undelivered events; refuse-new: keep the backlog and refuse new events. Both are counted and logged.'),
        durability: z.enum(['full', 'normal']).default('full').describe('full: fsync every group commit (survives power loss); normal: survives process crashes only.'),
      })
      .strict()
      .prefault({}),
    reconnect: z
      .object({
        initialDelayMs: z.number().int().min(1).max(600_000).default(500),
        maxDelayMs: z.number().int().min(1).max(3_600_000).default(60_000),
        jitter: z.number().min(0).max(1).default(0.3).describe('Fraction of the delay randomised (+/-).'),
      })
      .strict()
      .prefault({})
      .refine((r) => r.maxDelayMs >= r.initialDelayMs, { message: 'maxDelayMs must be >= initialDelayMs', path: ['maxDelayMs'] }),
    inflight: z.number().int().min(1).max(1024).default(64).describe('Unacknowledged QoS 1 publishes at once (sent in order).'),
    // The relay's embedded ingress tells the gateway its own limit when it connects (shared/src/gateway-contract.ts,
    // relayLimitsSchema) and the smaller of the two applies (agent/src/uplink/event-limit.ts). This value
    // is for a relay that does not say (an external broker, an older relay) and is in force until the
    // relay has spoken; its default is the relay's default ingress.maxPayloadBytes (relay/src/config.ts).
    maxEventBytes: z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(512 * 1024)
      .describe(
        "Largest event sent to the relay, bytes. A larger one is set aside in the outbox (kept, counted, named in health), not sent, so the events behind it keep flowing; it is sent by itself once the limit allows it. The relay's own ingress.maxPayloadBytes, which it tells the gateway when it connects, applies too (the smaller wins). Set it to the broker's limit with an external broker.",
      ),
    keepaliveS: z.number().int().min(5).max(3600).default(30),
    connectTimeoutMs: z.number().int().min(100).max(600_000).default(15_000),
  })
  .strict()
  // TLS files beside a plain URL would be ignored: the gateway secret would cross in clear text
  // while the config looks protected.
  .refine((u) => !u.url || /^(mqtts|wss):/.test(u.url) || (!u.tls.ca && !u.tls.cert && !u.tls.key), {
    message: 'uplink.tls.ca/cert/key are used only with an mqtts:// or wss:// uplink.url; use a TLS URL or remove them',
    path: ['tls'],
  });

export const agentConfigSchema = z
  .object({
    $schema: z.string().optional().describe('Path of the JSON Schema, for editors.'),
    gatewayId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'gatewayId: 1-64 of A-Z a-z 0-9 _ -').describe('Identity of this gateway in topics and in the cloud.'),
    dataDir: z.string().min(1).default('.data/agent').describe('Writable directory for state, blobs and the outbox (on flash).'),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().prefault({}),
    storage: z
      .object({
        maxBytes: z
          .number()
          .int()
          .min(1024 * 1024)
          .default(512 * 1024 * 1024)
          .describe('Quota of photos (blobs) and comparison history in dataDir, bytes. Beyond it the oldest photos and history entries whose analyses are finished and delivered to the relay (or uplink off) are evicted; never one an undelivered event or a running/queued analysis needs. Nothing evictable: uploads are refused with 507.'),
        minFreeBytes: z
          .number()
          .int()
          .min(0)
          .default(32 * 1024 * 1024)
          .describe('New uploads are refused with 507 while the filesystem of dataDir has less free space than this, so accepted analyses can finish; they are accepted again by themselves once space returns.'),
      })
      .strict()
      .prefault({})
      .describe('Storage limits of the data directory (see agent/README.md, Storage and quota).'),
    broker: z
      .object({
        host: host.default('127.0.0.1'),
        port: port.default(1884),
        maxPayloadBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(256 * 1024),
      })
      .strict()
      .prefault({}),
    bus: z
      .object({
        secret: z.string().min(32, 'bus.secret must be at least 32 characters').optional().describe('Master secret; per-client MQTT passwords are derived from it. Prefer TU_BUS_SECRET or secretFile.'),
        secretFile: z.string().min(1).optional().describe('File holding the secret; created (mode 0600) when missing. Default: {dataDir}/bus-secret.'),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        host: host.default('0.0.0.0'),
        port: port.default(8080),
        idleTimeoutMs: z
          .number()
          .int()
          .min(1000)
          .max(3_600_000)
          .default(60_000)
          .describe('A connection that sends nothing for this long is closed (an upload from a phone that left the Wi-Fi gives its queue place back). The event feed pings its WebSocket more often than this.'),
        requestTimeoutMs: z
          .number()
          .int()
          .min(10_000)
          .max(3_600_000)
          .default(300_000)
          .describe('A request whose body has not fully arrived after this long is answered 408 and dropped (a 25 MB photo at 1 Mbit/s takes about 200 s).'),
      })
      .strict()
      .prefault({}),
    orchestrator: z
      .object({
        steps: z
          .array(stepName)
          .min(1)
          .refine((s) => new Set(s).size === s.length, 'steps must not repeat')
          .optional()
          .describe('Which steps of the plan run (TU_STEPS). Default: every step of the plan. Dropping a step that another needs is refused.'),
        plan: z
          .partialRecord(stepName, planEntry)
          .default({})
          .describe('The analysis plan: per step what it needs, whether it is optional, its timeout and retry policy. Entries are merged over the default plan (recognition; comparison needs recognition; metadata), and a new entry adds a step (docs/orchestrator.md).'),
        stepTimeoutMs: z
          .partialRecord(stepName, ms)
          .optional()
          .describe('Deprecated: per-step timeouts before orchestrator.plan existed; used where a plan entry sets no timeoutMs.'),
        retry: retrySchema.prefault({}),
        maxConcurrent: z.number().int().min(1).max(1000).default(4).describe('Analyses in flight at once; the rest wait in the queue.'),
        maxQueue: z.number().int().min(0).max(1_000_000).default(1000).describe('Analyses waiting; beyond it new uploads fail with QUEUE_FULL.'),
        durability: z.enum(['full', 'normal']).default('full').describe('full: fsync every commit (survives power loss); normal: survives process crashes only.'),
      })
      .strict()
      .transform(resolvePlan)
      .prefault({}),
    model: z
      .object({
        dir: z.string().min(1).optional().describe('Model directory: ONNX or TF.js weights plus manifest.json, or a known model from agent/models (or MODEL_DIR).'),
        headPath: z.string().min(1).optional().describe('Machine-type head (npm run build:head writes dist/head/default-head.json). Used if present, else {dataDir}/head.json, else {model.dir}/head.json (release layout); none: types are not recognised and health is degraded.'),
        backend: z.enum(['wasm', 'tensorflow', 'cpu']).optional().describe('Force a tfjs backend (default: tensorflow if installed, else wasm, else cpu).'),
      })
      .strict()
      .prefault({}),
    services: z
      .object({
        vision: z.boolean().default(true),
        comparison: z.boolean().default(true),
        metadata: z.boolean().default(true),
      })
      .strict()
      .prefault({})
      .describe('Which analysis services run inside the agent process (false: run it as its own process with --service NAME).'),
    comparison: z
      .object({
        thresholds: z
          .object({
            similarityMatch: z.number().min(-1).max(1).optional(),
            similarityMismatch: z.number().min(-1).max(1).optional(),
            duplicateHamming: z.number().int().min(0).max(64).optional(),
            minTypeConfidence: z.number().min(0).max(1).optional(),
          })
          .strict()
          // calibrateSimilarity (agent/src/services/comparison/calibrate.ts) never suggests a
          // mismatch above the match; with one, the band where nothing is decided is gone and
          // verdicts contradict the thresholds they cite (verdict.ts).
          .superRefine(
            boundsInOrder('comparison.thresholds', COMPARISON_DEFAULTS, [
              { low: 'similarityMismatch', high: 'similarityMatch', equalOk: true, why: 'a similarity below the mismatch means another machine, at or above the match the same one' },
            ]),
          )
          .prefault({}),
        historyPerMachine: z.number().int().min(1).max(HISTORY_PER_MACHINE_MAX).default(200).describe(`Earlier photos kept per machine for comparison (at most ${HISTORY_PER_MACHINE_MAX}: each comparison reads and scores them all).`),
        maxReferences: z.number().int().min(1).max(200).default(20).describe('Reference photos kept for the registered machine.'),
      })
      .strict()
      .prefault({}),
    metadata: z
      .object({
        thresholds: z
          .object({
            minSharpness: z.number().nonnegative().optional(),
            minBrightness: z.number().min(0).max(1).optional(),
            maxBrightness: z.number().min(0).max(1).optional(),
            minMegapixels: z.number().nonnegative().optional(),
            minSide: z.number().int().nonnegative().optional(),
            minContrast: z.number().min(0).max(1).optional(),
          })
          .strict()
          // With the minimum at or above the maximum, every photo would be flagged too dark or too
          // bright (agent/src/services/metadata/quality.ts qualityWarnings).
          .superRefine(
            boundsInOrder('metadata.thresholds', QUALITY_DEFAULTS, [
              { low: 'minBrightness', high: 'maxBrightness', equalOk: false, why: 'otherwise every photo is flagged too dark or too bright' },
            ]),
          )
          .prefault({}),
        // Only offsets that exist (-12:00 to +14:00, minutes 00-59): one such as +24:00 or +02:60
        // was accepted, the date parser refuses it, and every capture time without a zone was then
        // silently dropped for the upload time (agent/src/services/metadata/sort.ts captureTimeUtc).
        assumedUtcOffset: z
          .string()
          .regex(UTC_OFFSET_IN_USE, 'assumedUtcOffset: an offset from UTC like +02:00 or -03:30, from -12:00 to +14:00')
          .optional()
          .describe("UTC offset of the cameras' clocks, applied to capture times that carry no zone. Absent: such a capture time is not used for lastSeenAt."),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxUploadBytes: z.number().int().min(1024).max(512 * 1024 * 1024).default(25 * 1024 * 1024),
        maxPixels: z.number().int().min(10_000).max(1_000_000_000).default(50_000_000),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        relayPublicKey: z
          .string()
          .regex(/-----BEGIN PUBLIC KEY-----/, 'auth.relayPublicKey: a PEM public key (-----BEGIN PUBLIC KEY-----)')
          .max(4096)
          .optional()
          .describe('Ed25519 public key (PEM) of the relay that signs technician tokens (`npm run relay -- technicians key`). Or relayPublicKeyFile.'),
        relayPublicKeyFile: filePath
          .optional()
          .describe('File holding relayPublicKey (written by `tu-agent provision --technician-key FILE`). Absent: only tokens signed on the device (`tu-agent token`) are accepted.'),
        maxTokenTtlS: z
          .number()
          .int()
          .min(60)
          .max(31 * 24 * 3600)
          .default(7 * 24 * 3600)
          .describe('Tokens valid for longer than this (exp - iat) are refused, whoever signed them: technician tokens are short-lived.'),
      })
      .strict()
      .prefault({})
      .refine((a) => !(a.relayPublicKey && a.relayPublicKeyFile), { message: 'set auth.relayPublicKey or auth.relayPublicKeyFile, not both', path: ['relayPublicKeyFile'] })
      .describe('Technician access to the HTTP API and UI (agent/README.md, Technician access).'),
    uplink: uplinkSchema.prefault({}).describe('Store-and-forward of events to the cloud relay (DESIGN §1, §5).'),
  })
  .strict()
  // Two servers on one address: refused here, naming both fields, not at start with a bare EADDRINUSE.
  .superRefine(listenersApart);

export type AgentConfig = z.output<typeof agentConfigSchema>;
export type AgentConfigInput = z.input<typeof agentConfigSchema>;
