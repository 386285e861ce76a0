import {
  boundedText,
  childTraceparent,
  durationBetween,
  ERROR_CODES,
  REASON_MAX,
  newId,
  stepOfEvent,
  STEPS,
  type AnalysisResults,
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
  ConfigError,
  planIssues,
  stepOfCommand,
} from '@tu/shared';
import type { PlanStep } from '@tu/firmware-config';
import { mayRetry, retryDelay } from '@tu/shared';
import { Dispatcher } from './dispatcher.js';
import { endUnfinishedSteps, iso, statusView, summarizeSteps, type AnalysisState, type AnalysisStatusView, type StepState } from './state.js';
import type { StateStore } from './store.js';

export interface OrchestratorConfig {
  /** The analysis plan, in dependency order (firmware-config/src/schema.ts resolves it). */
  plan: PlanStep[];
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
  /** Analyses that could not be ended (their terminal event could not be built); open until a restart. */
  endErrors: number;
}

export interface Orchestrator {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(analysisId: string): AnalysisStatusView | undefined;
  /**
   * An analysis's results, as the edges put them back into its terminal event (docs/messages.md).
   * When the terminal event goes out the analysis is still in memory (it leaves once published),
   * so the uplink and the UI feed read no row; a re-published one after a restart reads its row.
   */
  results(analysisId: string): AnalysisResults | undefined;
  readonly stats: OrchestratorStats;
  instances(): ReturnType<Dispatcher['snapshot']>;
}

const STEP_EVENTS = Object.values(STEPS).flatMap((d) => [d.completed, d.failed]);

/**
 * svc-analysis-orchestrator: runs each analysis's plan (shared/src/plan.ts) with point-to-point
 * commands: every step whose needs have completed starts at once, so independent steps run side
 * by side. It reacts to the step events, retries each step by its own policy, enforces each
 * step's timeout, and ends every analysis exactly once: completed when every step has ended
 * (an optional step may have failed), failed when a step others rely on failed. It knows no step
 * by name (a step is a catalogue entry plus a plan entry), never does analysis work, and never
 * waits on storage, except to write a terminal event ahead of publishing it.
 */
export function createOrchestrator(deps: OrchestratorDeps): Orchestrator {
  const { bus, store, config, clock } = deps;
  const issues = planIssues(config.plan);
  if (config.plan.length === 0 || issues.length > 0) {
    const problems = issues.length ? issues : [{ path: [], message: 'the plan has no steps' }];
    throw new ConfigError(`orchestrator.plan is not a sound plan: ${problems.map((i) => `orchestrator.plan.${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const log = deps.logger.child({ component: 'orchestrator' });
  const random = deps.random ?? Math.random;
  const dispatcher = new Dispatcher();
  const live = new Map<string, AnalysisState>();
  const queue: string[] = [];
  const timers = new Map<string, TimerHandle>();
  /** Attempts waiting for a live handler, per command type, in arrival order. */
  const waiting = new Map<CommandType, Set<string>>();
  /** Arrivals being written: an analysis starts once its row is on disk (begin). */
  const arrivals = new Map<string, Promise<void>>();
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
    endErrors: 0,
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

  /** Timers are per step: steps of one analysis run (and time out) side by side. */
  const timerKey = (s: AnalysisState, st: StepState): string => `${s.analysisId}/${st.name}`;
  const clearTimers = (s: AnalysisState): void => s.steps.forEach((st) => clearTimer(timerKey(s, st)));
  /** The plan entry of a step of this analysis (its own plan; rows from before plans ran in sequence). */
  const entry = (s: AnalysisState, st: StepState): PlanStep => planOf(s).find((p) => p.step === st.name)!;
  const ended = (s: AnalysisState, st: StepState): boolean => st.status === 'completed' || (st.status === 'failed' && entry(s, st).optional);
  /** A step with an attempt sent or waiting to be sent (running, or waiting for a handler or a retry). */
  const active = (st: StepState): boolean => st.status === 'running' || st.status === 'waiting';
  const stepNamed = (s: AnalysisState, name: StepName | undefined): StepState | undefined => (name ? s.steps.find((st) => st.name === name) : undefined);

  /**
   * An analysis's plan. Rows written before plans existed have none: they ran their steps one
   * after another, so each needs the one before it, with today's timeouts and retry policy.
   */
  function planOf(s: AnalysisState): PlanStep[] {
    if (!s.plan) {
      s.plan = s.steps.map((st, i) => {
        const now = config.plan.find((p) => p.step === st.name) ?? config.plan[0]!;
        return { ...now, step: st.name, needs: i > 0 ? [s.steps[i - 1]!.name] : [], optional: false };
      });
    }
    return s.plan;
  }

  // ---- intake ---------------------------------------------------------------

  function onUploaded(evt: EventOf<'tu.image.uploaded'>): void {
    stats.received++;
    const id = evt.data.analysisId;
    // has(), not get(): every upload asks, and get() parses (or copies) the whole state.
    if (live.has(id) || store.has(id)) {
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
      plan: config.plan,
      steps: config.plan.map((p) => ({ name: p.step, status: 'pending', attempts: [] })),
      results: {},
      version: 0,
    };
    live.set(id, s);
    if (queue.length >= config.maxQueue && running >= config.maxConcurrent) {
      end(s, 'failed', null, { code: 'QUEUE_FULL' satisfies ErrorCode, message: ERROR_CODES.QUEUE_FULL.message, retryable: true });
      return;
    }
    queue.push(id);
    arrivals.set(id, persist(s).catch(() => undefined));
    pump();
  }

  function pump(): void {
    while (!stopped && running < config.maxConcurrent && queue.length > 0) {
      const s = live.get(queue.shift()!);
      if (s && s.status === 'queued') begin(s);
    }
  }

  /**
   * Takes a slot and starts the analysis once its arrival is on disk: `analysis.started` is the
   * announcement that the analysis is accepted, so it (and every step event after it) must never
   * precede the row that makes a restart resume the analysis. Otherwise a kill -9 in that window
   * left consumers with a started analysis that no gateway knew of (test/crash.test.ts).
   */
  function begin(s: AnalysisState): void {
    running++;
    s.status = 'running';
    const arrival = arrivals.get(s.analysisId);
    arrivals.delete(s.analysisId);
    if (!arrival) return start(s);
    void arrival.then(() => {
      if (!stopped && !s.terminal) start(s);
    });
  }

  function start(s: AnalysisState): void {
    stats.started++;
    s.startedAt = clock.now();
    bus
      .publishEvent(
        'analysis.started',
        {
          analysisId: s.analysisId,
          ...(s.machineId ? { machineId: s.machineId } : {}),
          image: s.image,
          steps: s.steps.map((st) => st.name),
          plan: planOf(s).map((p) => ({ step: p.step, needs: p.needs, optional: p.optional })),
          startedAt: iso(s.startedAt)!,
          queuedMs: durationBetween(s.receivedAt, s.startedAt),
        },
        { subject: s.analysisId, traceparent: childTraceparent(s.traceparent) },
      )
      .catch((err: unknown) => log.warn({ err, analysisId: s.analysisId }, 'publishing analysis.started failed'));
    advance(s);
  }

  // ---- steps ----------------------------------------------------------------

  /**
   * Starts every pending step whose needs have completed; completes the analysis when every step
   * has ended. A pending step one of whose needs failed (an optional step: a required one failed
   * the analysis) can never start, so it fails at once, with the reason, and its own failure goes
   * the same way (failStep → advance): an optional step needing another optional one used to stay
   * pending for ever, the analysis running and holding its slot (test/orchestrator.robustness.test.ts).
   */
  function advance(s: AnalysisState): void {
    if (s.terminal || s.status !== 'running') return;
    const failed = new Set(s.steps.filter((st) => st.status === 'failed').map((st) => st.name));
    const blocked = s.steps.find((st) => st.status === 'pending' && entry(s, st).needs.some((n) => failed.has(n)));
    if (blocked) {
      const need = entry(s, blocked).needs.find((n) => failed.has(n))!;
      const reason = stepNamed(s, need)?.error;
      const message = `${blocked.name} needs ${need}, which failed${reason ? ` (${reason.code}: ${reason.message})` : ''}`;
      return failStep(s, blocked, { code: 'STEP_FAILED' satisfies ErrorCode, message: boundedText(message, REASON_MAX), retryable: false });
    }
    const done = new Set(s.steps.filter((st) => st.status === 'completed').map((st) => st.name));
    for (const st of s.steps) {
      if (st.status === 'pending' && entry(s, st).needs.every((n) => done.has(n))) startAttempt(s, st);
    }
    if (s.steps.every((st) => ended(s, st))) end(s, 'completed');
  }

  function startAttempt(s: AnalysisState, st: StepState): void {
    const now = clock.now();
    st.retryAt = undefined;
    st.startedAt ??= now;
    const attempt = { n: st.attempts.length + 1, commandId: newId(), startedAt: now, deadline: now + entry(s, st).timeoutMs, resends: 0 };
    st.attempts.push(attempt);
    st.status = 'waiting';
    dispatch(s, st);
    // Not persisted here (hot path): after a crash the step resumes with a fresh attempt.
    // State is written when the analysis arrives, when a step ends or is retried, and at the end.
  }

  /** Sends the step's current attempt to one live instance, or parks it until one appears. */
  function dispatch(s: AnalysisState, st: StepState): void {
    const a = st.attempts[st.attempts.length - 1]!;
    const type = STEPS[st.name].command;
    setTimer(timerKey(s, st), a.deadline, () => onTimeout(s.analysisId, st.name, a.commandId));
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
    // One command shape for every step (shared/src/schemas/messages.ts): `previous` holds the
    // results of the steps this one needs, and nothing else.
    const previous = Object.fromEntries(entry(s, st).needs.flatMap((n) => (s.results[n] ? [[n, s.results[n]]] : [])));
    const data = {
      analysisId: s.analysisId,
      attempt: a.n,
      ...(s.machineId ? { machineId: s.machineId } : {}),
      image: s.image,
      deadline: iso(a.deadline)!,
      ...(registered ? { registered } : {}),
      uploadedAt: s.uploadedAt,
      previous,
    };
    bus
      .sendCommand(type, instance, data, { subject: s.analysisId, id: a.commandId, traceparent: childTraceparent(s.traceparent) })
      .catch((err: unknown) => log.warn({ err, analysisId: s.analysisId, step: st.name }, 'sending command failed; the step timeout will retry'));
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
    const st = stepNamed(s, which.step);
    if (!st || !active(st)) {
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
    // A failure of an attempt already over (superseded, or timed out with its retry scheduled) is
    // ignored: it would fail the step beside the retry, or count the retry twice. A late success
    // is still taken.
    if (which.outcome === 'failed' && (a !== last || a.endedAt !== undefined)) {
      stats.ignored.staleFailure++;
      log.info({ analysisId: s.analysisId, type: evt.type, attempt: a.n }, 'failure of an attempt already over ignored');
      return;
    }
    const now = clock.now();
    clearTimer(timerKey(s, st));
    // Only an attempt still running holds its instance: a timed-out one was released then.
    if (last.endedAt === undefined && st.status === 'running') dispatcher.release(last.instance);
    waiting.get(STEPS[st.name].command)?.delete(s.analysisId);
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

  function onTimeout(analysisId: string, step: StepName, commandId: string): void {
    const s = live.get(analysisId);
    const st = s && stepNamed(s, step);
    const a = st?.attempts[st.attempts.length - 1];
    if (!s || !st || !a || a.commandId !== commandId || !active(st)) return;
    const now = clock.now();
    const timeoutMs = entry(s, st).timeoutMs;
    dispatcher.release(a.instance);
    waiting.get(STEPS[st.name].command)?.delete(analysisId);
    a.endedAt = now;
    a.outcome = 'timeout';
    stats.timeouts++;
    // Never sent, or sent to an instance that left with no other to take it (dispatch cleared it).
    if (a.sentAt === undefined || a.instance === undefined) {
      const error = { code: 'NO_HANDLER' satisfies ErrorCode, message: `no live ${STEPS[st.name].service} instance within ${timeoutMs} ms; start the service`, retryable: false };
      a.error = error;
      return void failStep(s, st, error);
    }
    const error = { code: 'STEP_TIMEOUT' satisfies ErrorCode, message: `${st.name} did not answer within ${timeoutMs} ms (instance ${a.instance})`, retryable: true };
    a.error = error;
    retryOrFail(s, st, error);
  }

  function retryOrFail(s: AnalysisState, st: StepState, error: FailureReason): void {
    const policy = entry(s, st).retry;
    if (error.retryable && mayRetry(policy, st.attempts.length)) {
      stats.retries++;
      const delay = retryDelay(st.attempts.length - 1, policy, random);
      st.status = 'waiting';
      st.retryAt = clock.now() + delay;
      log.info({ analysisId: s.analysisId, step: st.name, code: error.code, delayMs: delay, nextAttempt: st.attempts.length + 1 }, 'step failed; retrying');
      persistQuietly(s);
      setTimer(timerKey(s, st), st.retryAt, () => startAttempt(s, st));
      return;
    }
    const reason =
      error.retryable && st.attempts.length > 1
        ? { code: 'RETRIES_EXHAUSTED' satisfies ErrorCode, message: boundedText(`${st.name} failed ${st.attempts.length} times; last: ${error.code}: ${error.message}`, REASON_MAX), retryable: false }
        : error;
    failStep(s, st, reason);
  }

  /**
   * A step has failed for good. An optional one is reported (its summary keeps the reason) and
   * the rest of the plan goes on; any other fails the analysis with its reason (a step that
   * others need is never optional: shared/src/plan.ts).
   */
  function failStep(s: AnalysisState, st: StepState, reason: FailureReason): void {
    st.status = 'failed';
    st.endedAt = clock.now();
    st.error = reason;
    if (entry(s, st).optional) {
      log.warn({ analysisId: s.analysisId, step: st.name, code: reason.code, reason: reason.message }, 'optional step failed; the analysis goes on without it');
      persistQuietly(s);
      advance(s);
      return;
    }
    end(s, 'failed', st.name, reason);
  }

  // ---- ending ---------------------------------------------------------------

  /**
   * Ends the analysis without waiting. finish() must never reject unheard: a rejection nothing
   * handles stops the agent, and since the analysis stays open the restart resumes it into the
   * same failure (a boot loop; durations were once the cause, shared/src/schemas/common.ts
   * durationBetween). Logged instead: the analysis stays open until the agent restarts.
   */
  function end(s: AnalysisState, outcome: 'completed' | 'failed', step?: StepName | null, reason?: FailureReason): void {
    finish(s, outcome, step, reason).catch((err: unknown) => {
      stats.endErrors++;
      log.error({ err, analysisId: s.analysisId, outcome }, 'ending the analysis failed; it stays open until the agent restarts');
    });
  }

  async function finish(s: AnalysisState, outcome: 'completed' | 'failed', step?: StepName | null, reason?: FailureReason): Promise<void> {
    if (s.terminal) return; // never two terminal events for one analysis
    const wasRunning = s.status === 'running';
    const now = clock.now();
    clearTimers(s);
    for (const set of waiting.values()) set.delete(s.analysisId);
    // Steps still in flight when another failed: their answers are ignored from now on.
    for (const st of s.steps) {
      if (!active(st)) continue;
      const a = st.attempts[st.attempts.length - 1];
      if (a && a.endedAt === undefined && st.status === 'running') dispatcher.release(a.instance);
    }
    // Before the state is written and the event built: neither may say a step still runs.
    endUnfinishedSteps(s, now);
    s.status = outcome;
    s.endedAt = now;
    const meta = { subject: s.analysisId, traceparent: childTraceparent(s.traceparent), time: iso(now)! };
    // No results: each went out in its step's event and s.results keeps them; the uplink and the UI
    // feed put them back (agent/src/uplink/enrich.ts, agent/src/http/event-feed.ts).
    const common = { analysisId: s.analysisId, ...(s.machineId ? { machineId: s.machineId } : {}), steps: summarizeSteps(s) };
    if (outcome === 'completed') {
      stats.completed++;
      const startedAt = s.startedAt ?? s.receivedAt;
      s.terminal = {
        published: false,
        event: bus.buildEvent('analysis.completed', { ...common, image: s.image, uploadedAt: s.uploadedAt, startedAt: iso(startedAt)!, completedAt: iso(now)!, durationMs: durationBetween(startedAt, now) }, meta),
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
      const orphaned = [...live.values()].flatMap((s) =>
        s.terminal
          ? []
          : s.steps.flatMap((st) => {
              const a = st.attempts[st.attempts.length - 1];
              return a && st.status === 'running' && a.instance === instanceId && a.endedAt === undefined ? [{ s, st }] : [];
            }),
      );
      // An instance that leaves idle (a service stopping, as on every clean shutdown) is news,
      // not trouble; one that leaves with work in hand is (a crash, or a stop mid-analysis).
      if (orphaned.length === 0) return void log.info({ instanceId }, 'handler instance gone');
      log.warn({ instanceId, analyses: orphaned.length }, 'handler instance gone; re-dispatching its commands');
      for (const { s, st } of orphaned) dispatch(s, st);
    }
  }

  function wake(type: CommandType): void {
    const set = waiting.get(type);
    if (!set) return;
    const step = stepOfCommand(type);
    for (const id of [...set]) {
      const s = live.get(id);
      const st = s && stepNamed(s, step);
      if (!s || !st || s.terminal || st.status !== 'waiting' || st.retryAt !== undefined) {
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
    // Written after begin() took a slot but before it started (the row is serialised when its batch
    // is sealed): nothing was announced or sent, so it starts again from the queue.
    if (s.status === 'queued' || (s.status === 'running' && s.startedAt === undefined)) {
      s.status = 'queued';
      queue.push(s.analysisId);
      return;
    }
    running++;
    log.info({ analysisId: s.analysisId, steps: s.steps.map((st) => `${st.name}:${st.status}`).join(' ') }, 'resuming in-flight analysis');
    for (const st of s.steps) {
      if (!active(st)) continue;
      const a = st.attempts[st.attempts.length - 1];
      if (!a || st.retryAt !== undefined || a.endedAt !== undefined) {
        // retryAt is wall-clock time from before the restart; a clock now set back (a gateway
        // booted offline) would stretch the wait by as much, so it is never longer than the
        // policy's longest delay.
        const wait = Math.min(Math.max(0, (st.retryAt ?? clock.now()) - clock.now()), entry(s, st).retry.maxDelayMs);
        setTimer(timerKey(s, st), clock.now() + wait, () => startAttempt(s, st));
        continue;
      }
      // Re-send the step's current command (same id; handlers tolerate duplicates) with a fresh timeout.
      a.deadline = clock.now() + entry(s, st).timeoutMs;
      dispatch(s, st);
    }
    advance(s);
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
    results(id) {
      return (live.get(id) ?? store.get(id))?.results;
    },
  };
}
