import {
  childTraceparent,
  ERROR_CODES,
  newId,
  stepOfEvent,
  STEPS,
  type AnyEvent,
  type BusClient,
  type Clock,
  type ErrorCode,
  type CommandType,
  type EventOf,
  type FailureReason,
  type Logger,
  type RegisteredMachine,
  type StepName,
  type TimerHandle,
} from '@tu/shared';
import { mayRetry, retryDelay, type RetryPolicy } from '@tu/shared';
import { Dispatcher } from './dispatcher.js';
import { iso, statusView, summarizeSteps, type AnalysisState, type AnalysisStatusView, type StepState } from './state.js';
import type { StateStore } from './store.js';

export interface OrchestratorConfig {
  steps: StepName[];
  stepTimeoutMs: Record<StepName, number>;
  retry: RetryPolicy;
  maxConcurrent: number;
  maxQueue: number;
}

export interface OrchestratorDeps {
  bus: BusClient;
  store: StateStore;
  config: OrchestratorConfig;
  logger: Logger;
  clock: Clock;
  random?: () => number;
  /** The machine registered to this gateway, passed to comparison and metadata. */
  registeredMachine?: () => RegisteredMachine | undefined;
  /**
   * Set when an uplink forwards events to the relay: resolves true once a terminal event is on
   * disk in its outbox. The record closes only then; until then a restart re-publishes it.
   */
  terminalOnDisk?: (eventId: string) => Promise<boolean>;
}

export interface OrchestratorStats {
  received: number;
  started: number;
  completed: number;
  failed: number;
  retries: number;
  timeouts: number;
  resends: number;
  ignored: { duplicateUpload: number; unknownAnalysis: number; lateOrDuplicate: number; staleFailure: number };
  running: number;
  queued: number;
  persistErrors: number;
}

export interface Orchestrator {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(analysisId: string): AnalysisStatusView | undefined;
  readonly stats: OrchestratorStats;
  instances(): ReturnType<Dispatcher['snapshot']>;
}

const STEP_EVENTS = Object.values(STEPS).flatMap((d) => [d.completed, d.failed]);

/**
 * svc-analysis-orchestrator: drives each analysis through its steps with point-to-point
 * commands, reacts to the step events, retries with backoff, enforces timeouts, and ends
 * every analysis exactly once. It never does analysis work and never waits on storage,
 * except to write a terminal event ahead of publishing it.
 */
export function createOrchestrator(deps: OrchestratorDeps): Orchestrator {
  const { bus, store, config, clock } = deps;
  const log = deps.logger.child({ component: 'orchestrator' });
  const random = deps.random ?? Math.random;
  const dispatcher = new Dispatcher();
  const live = new Map<string, AnalysisState>();
  const queue: string[] = [];
  const timers = new Map<string, TimerHandle>();
  /** Attempts waiting for a live handler, per command type, in arrival order. */
  const waiting = new Map<CommandType, Set<string>>();
  const unsubscribe: (() => Promise<void>)[] = [];
  let running = 0;
  let stopped = false;

  const stats: OrchestratorStats = {
    received: 0,
    started: 0,
    completed: 0,
    failed: 0,
    retries: 0,
    timeouts: 0,
    resends: 0,
    ignored: { duplicateUpload: 0, unknownAnalysis: 0, lateOrDuplicate: 0, staleFailure: 0 },
    get running() {
      return running;
    },
    get queued() {
      return queue.length;
    },
    persistErrors: 0,
  };

  const persist = (s: AnalysisState): Promise<void> => {
    s.version++;
    return store.save(s).catch((err: unknown) => {
      stats.persistErrors++;
      log.error({ err, analysisId: s.analysisId }, 'persisting analysis state failed');
      throw err;
    });
  };
  const persistQuietly = (s: AnalysisState): void => {
    persist(s).catch(() => undefined);
  };

  const setTimer = (key: string, at: number, fn: () => void) => {
    clearTimer(key);
    timers.set(key, clock.setTimeout(() => {
      timers.delete(key);
      if (!stopped) fn();
    }, Math.max(0, at - clock.now())));
  };
  const clearTimer = (key: string) => {
    const t = timers.get(key);
    if (t) {
      clock.clearTimeout(t);
      timers.delete(key);
    }
  };

  const currentStep = (s: AnalysisState): StepState | undefined => s.steps.find((st) => st.status !== 'completed');

  // ---- intake ---------------------------------------------------------------

  function onUploaded(evt: EventOf<'tu.image.uploaded'>): void {
    stats.received++;
    const id = evt.data.analysisId;
    if (live.has(id) || store.get(id)) {
      stats.ignored.duplicateUpload++;
      log.info({ analysisId: id, eventId: evt.id }, 'duplicate upload event ignored');
      return;
    }
    const s: AnalysisState = {
      analysisId: id,
      status: 'queued',
      ...(evt.data.machineId ? { machineId: evt.data.machineId } : {}),
      image: evt.data.image,
      ...(evt.data.fileName ? { fileName: evt.data.fileName } : {}),
      uploadedAt: evt.data.uploadedAt,
      uploadEventId: evt.id,
      ...(evt.traceparent ? { traceparent: evt.traceparent } : {}),
      receivedAt: clock.now(),
      steps: config.steps.map((name) => ({ name, status: 'pending', attempts: [] })),
      results: {},
      version: 0,
    };
    live.set(id, s);
    if (queue.length >= config.maxQueue && running >= config.maxConcurrent) {
      void finish(s, 'failed', null, { code: 'QUEUE_FULL' satisfies ErrorCode, message: ERROR_CODES.QUEUE_FULL.message, retryable: true });
      return;
    }
    queue.push(id);
    persistQuietly(s);
    pump();
  }

  function pump(): void {
    while (!stopped && running < config.maxConcurrent && queue.length > 0) {
      const s = live.get(queue.shift()!);
      if (s && s.status === 'queued') begin(s);
    }
  }

  function begin(s: AnalysisState): void {
    running++;
    stats.started++;
    s.status = 'running';
    s.startedAt = clock.now();
    bus
      .publishEvent(
        'analysis.started',
        {
          analysisId: s.analysisId,
          ...(s.machineId ? { machineId: s.machineId } : {}),
          image: s.image,
          steps: s.steps.map((st) => st.name),
          startedAt: iso(s.startedAt)!,
          queuedMs: s.startedAt - s.receivedAt,
        },
        { subject: s.analysisId, traceparent: childTraceparent(s.traceparent) },
      )
      .catch((err: unknown) => log.warn({ err, analysisId: s.analysisId }, 'publishing analysis.started failed'));
    advance(s);
  }

  // ---- steps ----------------------------------------------------------------

  function advance(s: AnalysisState): void {
    const st = currentStep(s);
    if (!st) return void finish(s, 'completed');
    startAttempt(s, st);
  }

  function startAttempt(s: AnalysisState, st: StepState): void {
    const now = clock.now();
    st.retryAt = undefined;
    st.startedAt ??= now;
    const attempt = { n: st.attempts.length + 1, commandId: newId(), startedAt: now, deadline: now + config.stepTimeoutMs[st.name], resends: 0 };
    st.attempts.push(attempt);
    st.status = 'waiting';
    dispatch(s, st);
    // Not persisted here (hot path): after a crash the step resumes with a fresh attempt.
    // State is written when the analysis arrives, when a step ends or is retried, and at the end.
  }

  /** Sends the current attempt's command to one live instance, or parks it until one appears. */
  function dispatch(s: AnalysisState, st: StepState): void {
    const a = st.attempts[st.attempts.length - 1]!;
    const type = STEPS[st.name].command;
    setTimer(s.analysisId, a.deadline, () => onTimeout(s.analysisId, a.commandId));
    const instance = dispatcher.pick(type);
    if (!instance) {
      st.status = 'waiting';
      a.instance = undefined;
      let set = waiting.get(type);
      if (!set) waiting.set(type, (set = new Set()));
      set.add(s.analysisId);
      log.debug({ analysisId: s.analysisId, step: st.name }, 'no live handler; step waits');
      return;
    }
    waiting.get(type)?.delete(s.analysisId);
    dispatcher.acquire(instance);
    if (a.sentAt !== undefined) {
      a.resends++;
      stats.resends++;
    }
    a.instance = instance;
    a.sentAt = clock.now();
    st.status = 'running';
    const registered = deps.registeredMachine?.();
    const base = {
      analysisId: s.analysisId,
      attempt: a.n,
      ...(s.machineId ? { machineId: s.machineId } : {}),
      image: s.image,
      deadline: iso(a.deadline)!,
    };
    const previous = { ...(s.results.recognition ? { recognition: s.results.recognition } : {}), ...(s.results.comparison ? { comparison: s.results.comparison } : {}) };
    const meta = { subject: s.analysisId, id: a.commandId, traceparent: childTraceparent(s.traceparent) };
    const sent =
      st.name === 'recognition'
        ? bus.sendCommand('analysis.recognition.request', instance, base, meta)
        : st.name === 'comparison'
          ? bus.sendCommand('analysis.comparison.request', instance, { ...base, ...(registered ? { registered } : {}), previous }, meta)
          : bus.sendCommand('analysis.metadata.request', instance, { ...base, ...(registered ? { registered } : {}), uploadedAt: s.uploadedAt, previous }, meta);
    sent.catch((err: unknown) => log.warn({ err, analysisId: s.analysisId, step: st.name }, 'sending command failed; the step timeout will retry'));
  }

  function onStepEvent(evt: AnyEvent): void {
    const which = stepOfEvent(evt.type as (typeof STEP_EVENTS)[number]);
    if (!which) return;
    const data = evt.data as { analysisId: string; commandId: string; instance: string; attempt: number };
    const s = live.get(data.analysisId);
    if (!s || (s.status !== 'running' && s.status !== 'queued')) {
      stats.ignored.unknownAnalysis++;
      log.info({ analysisId: data.analysisId, type: evt.type, eventId: evt.id }, 'event for an unknown or finished analysis ignored');
      return;
    }
    const st = s.steps.find((x) => x.name === which.step);
    const current = currentStep(s);
    if (!st || st !== current || (st.status !== 'running' && st.status !== 'waiting')) {
      stats.ignored.lateOrDuplicate++;
      log.info({ analysisId: s.analysisId, type: evt.type, eventId: evt.id }, 'late or duplicate step event ignored');
      return;
    }
    const a = st.attempts.find((x) => x.commandId === data.commandId);
    if (!a) {
      stats.ignored.lateOrDuplicate++;
      log.info({ analysisId: s.analysisId, type: evt.type }, 'step event answers no command of this analysis; ignored');
      return;
    }
    const last = st.attempts[st.attempts.length - 1]!;
    if (which.outcome === 'failed' && a !== last) {
      stats.ignored.staleFailure++;
      log.info({ analysisId: s.analysisId, type: evt.type, attempt: a.n }, 'failure of a superseded attempt ignored');
      return;
    }
    const now = clock.now();
    clearTimer(s.analysisId);
    dispatcher.release(last.instance);
    for (const set of waiting.values()) set.delete(s.analysisId);
    a.endedAt = now;
    a.outcome = which.outcome;
    if (which.outcome === 'completed') {
      st.status = 'completed';
      st.endedAt = now;
      st.error = undefined;
      (s.results as Record<string, unknown>)[st.name] = (evt.data as { result: unknown }).result;
      persistQuietly(s);
      advance(s);
      return;
    }
    const error = (evt.data as { error: FailureReason }).error;
    a.error = error;
    retryOrFail(s, st, error);
  }

  function onTimeout(analysisId: string, commandId: string): void {
    const s = live.get(analysisId);
    const st = s && currentStep(s);
    const a = st?.attempts[st.attempts.length - 1];
    if (!s || !st || !a || a.commandId !== commandId) return;
    const now = clock.now();
    dispatcher.release(a.instance);
    waiting.get(STEPS[st.name].command)?.delete(analysisId);
    a.endedAt = now;
    a.outcome = 'timeout';
    stats.timeouts++;
    if (a.sentAt === undefined) {
      const error = { code: 'NO_HANDLER' satisfies ErrorCode, message: `no live ${STEPS[st.name].service} instance within ${config.stepTimeoutMs[st.name]} ms; start the service`, retryable: false };
      a.error = error;
      return void failStep(s, st, error);
    }
    const error = { code: 'STEP_TIMEOUT' satisfies ErrorCode, message: `${st.name} did not answer within ${config.stepTimeoutMs[st.name]} ms (instance ${a.instance})`, retryable: true };
    a.error = error;
    retryOrFail(s, st, error);
  }

  function retryOrFail(s: AnalysisState, st: StepState, error: FailureReason): void {
    if (error.retryable && mayRetry(config.retry, st.attempts.length)) {
      stats.retries++;
      const delay = retryDelay(st.attempts.length - 1, config.retry, random);
      st.status = 'waiting';
      st.retryAt = clock.now() + delay;
      log.info({ analysisId: s.analysisId, step: st.name, code: error.code, delayMs: delay, nextAttempt: st.attempts.length + 1 }, 'step failed; retrying');
      persistQuietly(s);
      setTimer(s.analysisId, st.retryAt, () => startAttempt(s, st));
      return;
    }
    const reason =
      error.retryable && st.attempts.length > 1
        ? { code: 'RETRIES_EXHAUSTED' satisfies ErrorCode, message: `${st.name} failed ${st.attempts.length} times; last: ${error.code}: ${error.message}`.slice(0, 2000), retryable: false }
        : error;
    failStep(s, st, reason);
  }

  function failStep(s: AnalysisState, st: StepState, reason: FailureReason): void {
    st.status = 'failed';
    st.endedAt = clock.now();
    st.error = reason;
    void finish(s, 'failed', st.name, reason);
  }

  // ---- ending ---------------------------------------------------------------

  async function finish(s: AnalysisState, outcome: 'completed' | 'failed', step?: StepName | null, reason?: FailureReason): Promise<void> {
    if (s.terminal) return; // never two terminal events for one analysis
    const wasRunning = s.status === 'running';
    const now = clock.now();
    clearTimer(s.analysisId);
    for (const set of waiting.values()) set.delete(s.analysisId);
    s.status = outcome;
    s.endedAt = now;
    const meta = { subject: s.analysisId, traceparent: childTraceparent(s.traceparent), time: iso(now)! };
    const common = { analysisId: s.analysisId, ...(s.machineId ? { machineId: s.machineId } : {}), steps: summarizeSteps(s), results: s.results };
    if (outcome === 'completed') {
      stats.completed++;
      const startedAt = s.startedAt ?? s.receivedAt;
      s.terminal = {
        published: false,
        event: bus.buildEvent('analysis.completed', { ...common, image: s.image, uploadedAt: s.uploadedAt, startedAt: iso(startedAt)!, completedAt: iso(now)!, durationMs: now - startedAt }, meta),
      };
    } else {
      stats.failed++;
      s.failure = { step: step ?? null, reason: reason! };
      s.terminal = {
        published: false,
        event: bus.buildEvent('analysis.failed', { ...common, image: s.image, uploadedAt: s.uploadedAt, failedAt: iso(now)!, failedStep: step ?? null, reason: reason! }, meta),
      };
      log.warn({ analysisId: s.analysisId, step, code: reason?.code, reason: reason?.message }, 'analysis failed');
    }
    if (wasRunning) {
      running--;
      pump();
    }
    try {
      await persist(s); // write ahead: a restart re-publishes the same event id
    } catch {
      return; // stays open in memory; a restart resumes from the last durable state
    }
    await publishTerminal(s);
  }

  async function publishTerminal(s: AnalysisState): Promise<void> {
    if (!s.terminal || s.terminal.published) return;
    try {
      await bus.republish(s.terminal.event);
    } catch (err) {
      log.warn({ err, analysisId: s.analysisId }, 'publishing the terminal event failed; it is re-sent on restart');
      return;
    }
    // With an uplink, "published" means on disk in its outbox: the bus acknowledged the publish
    // before the uplink's observer committed the event, and closing the record in that gap let a
    // kill -9 lose the event for the relay (agent/src/uplink/handoff.ts).
    const onDisk = deps.terminalOnDisk ? await deps.terminalOnDisk(s.terminal.event.id) : true;
    s.terminal.published = true;
    live.delete(s.analysisId);
    if (!onDisk) {
      log.warn({ analysisId: s.analysisId, eventId: s.terminal.event.id }, 'terminal event not on disk in the uplink outbox; the analysis stays open and the event is re-sent on restart');
      return;
    }
    store.markPublished(s.analysisId).catch((err: unknown) => log.warn({ err, analysisId: s.analysisId }, 'marking the terminal event published failed; it is re-sent on restart'));
  }

  // ---- presence -------------------------------------------------------------

  function onPresence(instanceId: string, presence: Parameters<Dispatcher['update']>[1]): void {
    const change = dispatcher.update(instanceId, presence);
    if (change === 'added') {
      log.info({ instanceId, handles: presence?.handles }, 'handler instance online');
      for (const type of presence!.handles as CommandType[]) wake(type);
    } else if (change === 'removed') {
      const orphaned = [...live.values()].filter((s) => {
        const st = currentStep(s);
        const a = st?.attempts[st.attempts.length - 1];
        return st && a && st.status === 'running' && a.instance === instanceId && a.endedAt === undefined;
      });
      // An instance that leaves idle (a service stopping, as on every clean shutdown) is news,
      // not trouble; one that leaves with work in hand is (a crash, or a stop mid-analysis).
      if (orphaned.length === 0) return void log.info({ instanceId }, 'handler instance gone');
      log.warn({ instanceId, analyses: orphaned.length }, 'handler instance gone; re-dispatching its commands');
      for (const s of orphaned) dispatch(s, currentStep(s)!);
    }
  }

  function wake(type: CommandType): void {
    const set = waiting.get(type);
    if (!set) return;
    for (const id of [...set]) {
      const s = live.get(id);
      const st = s && currentStep(s);
      if (!s || !st || st.retryAt !== undefined) {
        set.delete(id);
        continue;
      }
      dispatch(s, st);
      if (!dispatcher.pick(type)) break;
    }
  }

  // ---- recovery -------------------------------------------------------------

  function resume(s: AnalysisState): void {
    live.set(s.analysisId, s);
    if (s.terminal && !s.terminal.published) {
      log.info({ analysisId: s.analysisId, type: s.terminal.event.type }, 'resuming: re-publishing terminal event');
      void publishTerminal(s);
      return;
    }
    if (s.status === 'queued') {
      queue.push(s.analysisId);
      return;
    }
    running++;
    const st = currentStep(s);
    if (!st) return void finish(s, 'completed');
    const a = st.attempts[st.attempts.length - 1];
    log.info({ analysisId: s.analysisId, step: st.name, attempt: a?.n }, 'resuming in-flight analysis');
    if (!a || st.retryAt !== undefined || a.endedAt !== undefined) {
      setTimer(s.analysisId, st.retryAt ?? clock.now(), () => startAttempt(s, st));
      return;
    }
    // Re-send the current command (same id; handlers tolerate duplicates) with a fresh timeout.
    a.deadline = clock.now() + config.stepTimeoutMs[st.name];
    dispatch(s, st);
  }

  return {
    stats,
    instances: () => dispatcher.snapshot(),
    async start() {
      unsubscribe.push(await bus.onPresence((c) => onPresence(c.instanceId, c.presence)));
      unsubscribe.push(await bus.onEvents(['tu.image.uploaded'], (e) => onUploaded(e as EventOf<'tu.image.uploaded'>)));
      unsubscribe.push(await bus.onEvents(STEP_EVENTS, onStepEvent));
      const open = store.loadOpen();
      if (open.length) log.info({ count: open.length }, 'resuming analyses from the state store');
      for (const s of open) resume(s);
      pump();
    },
    async stop() {
      stopped = true;
      for (const key of [...timers.keys()]) clearTimer(key);
      for (const u of unsubscribe.splice(0)) await u().catch(() => undefined);
    },
    status(id) {
      const s = live.get(id) ?? store.get(id);
      return s ? statusView(s) : undefined;
    },
  };
}
