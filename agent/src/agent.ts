import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { AgentConfig } from '@tu/firmware-config';
import { systemClock, type BusClient, type Clock, type Logger } from '@tu/shared';
import { createStorageQuota } from './blobs/quota.js';
import { readEmbedding, readThumbnailBase64 } from './blobs/derived.js';
import { openBlobStore, type BlobStore } from './blobs/store.js';
import { createStorageGuard } from './fs/storage-guard.js';
import type { SetAside } from './fs/set-aside.js';
import { startBroker, type Broker } from './broker/broker.js';
import { resolveBusSecret } from './broker/credentials.js';
import { connectObserver, connectService, type BusIdentity } from './bus.js';
import { openPhotoHistory, type PhotoHistory } from './device/history.js';
import { createReferenceRegistrar } from './device/reference-registrar.js';
import { openDeviceState, type DeviceState } from './device/state.js';
import { buildApp } from './http/app.js';
import { createEventFeed } from './http/event-feed.js';
import { createTokenVerifier, readOrCreateDeviceKey, relayPublicKeyFrom } from './http/auth/tokens.js';
import { createIntake, type Intake } from './intake/intake.js';
import { openIntakeJournal } from './intake/journal.js';
import { createOrchestrator, type Orchestrator } from './orchestrator/orchestrator.js';
import { openStateStore, type StateStore } from './orchestrator/store.js';
import { WriterThread } from './sqlite/writer-thread.js';
import { dropMqttNumberCache } from './mqtt-number-cache.js';
import { ANALYSIS_SERVICES, runAnalysisService, startConfiguredRecognizer, type RunningAnalysisService } from './services/run.js';
import { VisionError } from './services/vision/errors.js';
import type { Recognizer } from './services/vision/recognizer.js';
import { EXAMPLES_FILE, openExampleStore, type ExampleStore } from './teach/examples.js';
import { createTeacher, type Teacher } from './teach/teacher.js';
import { createHeadRefitter, type HeadRefitter } from './teach/refitter.js';
import { startUplink, type Uplink } from './uplink/uplink.js';
import { prepareDataDir } from './release/data-format.js';
import { agentVersion } from './release/layout.js';

export interface Agent {
  readonly config: AgentConfig;
  readonly broker: Broker;
  readonly orchestrator: Orchestrator;
  readonly store: StateStore;
  /** The orchestrator's bus client (its counters feed health and metrics). */
  readonly orchestratorBus: BusClient;
  /** Bus identity for in-process services (in-process transport, derived credentials). */
  readonly busIdentity: BusIdentity;
  readonly blobs: BlobStore;
  readonly device: DeviceState;
  readonly history: PhotoHistory;
  readonly intake: Intake;
  /** Technicians' labelled examples (see teach/examples.ts listExamples for the head refit). */
  readonly teacher: Teacher;
  /** Refits the in-process head to the technicians' examples (teach/refitter.ts). */
  readonly refitter: HeadRefitter;
  /** Store-and-forward to the cloud relay (disabled when uplink.url is not set). */
  readonly uplink: Uplink;
  /** The analysis services running in this process. */
  readonly services: readonly RunningAnalysisService[];
  /** The in-process recognizer (undefined when vision runs in another process). */
  recognizer(): Recognizer | undefined;
  /** The HTTP API (use app.inject() in tests) and the URL it listens on. */
  readonly http: { app: FastifyInstance; url: string };
  stop(): Promise<void>;
}

export interface AgentDeps {
  logger: Logger;
  clock?: Clock;
  random?: () => number;
}

/**
 * Starts the gateway agent: broker (TCP + in-process), durable state store, orchestrator,
 * blob store, device state, the analysis services enabled in config (in this process),
 * the image intake and the HTTP API. stop() closes everything in reverse order.
 */
export async function startAgent(config: AgentConfig, deps: AgentDeps): Promise<Agent> {
  const log = deps.logger;
  const clock = deps.clock ?? systemClock;
  const startedMono = clock.monotonic();
  dropMqttNumberCache();
  const dataDir = path.resolve(config.dataDir);
  fs.mkdirSync(dataDir, { recursive: true });
  // Before any store opens: migrate older data forward, refuse data from a newer agent.
  await prepareDataDir(dataDir, agentVersion(), log);
  const closers: (() => Promise<void> | void)[] = [];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        log.warn({ err }, 'error while stopping');
      }
    }
  };
  try {
    const secret = resolveBusSecret({ ...config.bus, dataDir });
    const broker = await startBroker({
      gatewayId: config.gatewayId,
      secret,
      logger: log,
      tcp: { host: config.broker.host, port: config.broker.port },
      maxPayloadBytes: config.broker.maxPayloadBytes,
    });
    closers.push(() => broker.close());
    const busIdentity: BusIdentity = {
      gatewayId: config.gatewayId,
      secret,
      transport: { kind: 'stream', open: () => broker.connectInProcess() },
      logger: log,
      maxPayloadBytes: config.broker.maxPayloadBytes,
    };
    // Every store tells the guard of failed writes: a full disk refuses new work with 507, never crashes (fs/storage-guard.ts).
    const storage = createStorageGuard({ dataDir, minFreeBytes: config.storage.minFreeBytes, clock, logger: log });
    closers.push(() => storage.stop());
    // One thread writes every SQLite file that must not block the event loop (the store, the
    // journal, the outbox): a thread each would cost ~11 MB apiece (sqlite/writer-thread.ts).
    // Closed last, after the files on it (closers run in reverse).
    const writerThread = new WriterThread();
    closers.push(() => writerThread.close());
    const store = await openStateStore({
      file: path.join(dataDir, 'orchestrator.sqlite'),
      durability: config.orchestrator.durability,
      clock,
      onWriteError: (err) => void storage.report(err, 'analysis state store'),
      thread: writerThread,
    });
    closers.push(() => store.close());
    storage.onRecovered(() => store.retryNow());
    // Before any upload: temp files of photos a power cut interrupted are removed (blobs/store.ts).
    const blobs = await openBlobStore(dataDir, { removeStaleTemps: true });
    // Data files found damaged at start and moved aside so the gateway could start (fs/set-aside.ts); health names them.
    const setAside: SetAside[] = [];
    const onSetAside = (s: SetAside) => {
      setAside.push(s);
      log.warn(s, `${s.what} was damaged; moved it aside`);
    };
    const device = await openDeviceState(dataDir, { maxReferences: config.comparison.maxReferences, onWriteError: (err) => void storage.report(err, 'device state'), onSetAside, logger: log });
    const history = openPhotoHistory(path.join(dataDir, 'history.sqlite'), {
      onSetAside,
      maxPerMachine: config.comparison.historyPerMachine,
      durability: config.orchestrator.durability,
      onWriteError: (err) => {
        // The analysis still completes; the photo is only missing from later comparisons.
        if (storage.report(err, 'photo history')) log.error({ err: err.message }, 'recording the photo history failed on a full disk');
      },
    });
    closers.push(() => history.close());

    // Terminal events leave the bus without results (docs/messages.md); the uplink and the UI feed
    // take them from the orchestrator, created below, after the uplink: until then, from its rows.
    let orchestratorRef: Orchestrator | undefined = undefined;
    const resultsOf = (id: string) => (orchestratorRef ? orchestratorRef.results(id) : store.get(id)?.results);
    // The uplink subscribes before the orchestrator starts: the orchestrator re-publishes on start
    // every terminal event the outbox had not committed (see uplink/handoff.ts).
    // The label store opens below (after the intake); until then no label is published.
    let examplesRef: ExampleStore | undefined = undefined;
    const labelledEmbedding = (analysisId: string, sha256: string): number[] | undefined => {
      const kept = examplesRef?.get(analysisId)?.example;
      return kept && kept.sha256 === sha256 ? kept.embedding : undefined;
    };
    const uplink = await startUplink(config, {
      identity: busIdentity,
      dataDir,
      clock,
      random: deps.random ?? Math.random,
      logger: log,
      blobs,
      writerThread,
      resultsOf,
      labelledEmbedding,
    });
    closers.push(() => uplink.stop());
    const outbox = uplink.outbox;
    if (outbox) {
      outbox.onWriteError((err) => void storage.report(err, 'uplink outbox'));
      storage.onRecovered(() => outbox.retryNow());
    }

    const orchBus = await connectService(busIdentity, 'svc-analysis-orchestrator', { instanceId: 'svc-analysis-orchestrator' });
    closers.push(() => orchBus.close());
    const orchestrator = createOrchestrator({
      bus: orchBus,
      store,
      config: config.orchestrator,
      logger: log,
      clock,
      registeredMachine: () => device.machine(),
      ...(uplink.terminalOnDisk ? { terminalOnDisk: uplink.terminalOnDisk } : {}),
      ...(deps.random ? { random: deps.random } : {}),
    });
    orchestratorRef = orchestrator;
    await orchestrator.start();
    closers.push(() => orchestrator.stop());

    // Analysis services in this process (each its own bus client, as in a separate process).
    const services: RunningAnalysisService[] = [];
    // Created below, after the services: a vision worker replaced after a crash needs the corrections again.
    let refitterRef: HeadRefitter | undefined = undefined;
    let sharedRecognizer: Recognizer | undefined;
    let recognizerStartError: unknown;
    // Head files that do not load are set aside like any damaged data file (services/run.ts).
    // A head passed over for another model stays in place, so every worker restart meets it again: listed once.
    const onHeadSetAside = (h: SetAside) => {
      if (!setAside.some((s) => s.file === h.file && s.movedTo === null && h.movedTo === null)) setAside.push(h);
    };
    const headStart = { logger: log, clock, onHeadSetAside };
    if (config.services.vision) {
      try {
        sharedRecognizer = await startConfiguredRecognizer(config, headStart);
        const first = sharedRecognizer;
        // The current one: after a crash the vision service has replaced the first (services/run.ts).
        closers.push(() => (recognizer() ?? first).dispose());
      } catch (err) {
        // A model that does not load keeps vision off (its steps answer MODEL_*, health says why), never the
        // uploads, metadata, comparison and the UI; the vision service retries the start (vision/keeper.ts).
        if (!(err instanceof VisionError)) throw err;
        log.error({ err }, 'the vision model could not be loaded; the gateway runs without recognition until it can');
        recognizerStartError = err;
      }
    }
    for (const name of ANALYSIS_SERVICES) {
      if (!config.services[name]) continue;
      const svc = await runAnalysisService(name, {
        config,
        identity: busIdentity,
        blobs,
        device,
        history,
        logger: log,
        ...(sharedRecognizer ? { recognizer: sharedRecognizer } : {}),
        onRecognizerReplaced: () => refitterRef?.schedule(),
        clock,
        onHeadSetAside: headStart.onHeadSetAside,
        ...(recognizerStartError !== undefined && name === 'vision' ? { recognizerStartError } : {}),
      });
      services.push(svc);
      closers.push(() => svc.stop());
    }
    const vision = services.find((s) => s.name === 'vision');
    const recognizer = (): Recognizer | undefined => vision?.recognizer;

    // Photos and history within storage.maxBytes: the oldest that nothing needs any more are evicted (blobs/quota.ts).
    const quota = createStorageQuota({
      blobs,
      history,
      maxBytes: config.storage.maxBytes,
      imagesByAge: (after, limit) => store.imagesByAge(after, limit),
      needed: () => {
        const analyses = new Set<string>(outbox?.undeliveredSubjects() ?? []);
        const shas = new Set<string>([...intake.pendingImages(), ...device.references().map((r) => r.sha256)]);
        for (const id of analyses) {
          const sha = store.get(id)?.image.sha256;
          if (sha) shas.add(sha);
        }
        for (const o of store.openImages()) {
          analyses.add(o.analysisId);
          shas.add(o.sha256);
        }
        return { analyses, shas };
      },
      clock,
      logger: log,
    });
    // Image intake: journal + its own bus client (producer of tu.image.uploaded).
    const journal = openIntakeJournal(path.join(dataDir, 'intake.sqlite'), writerThread);
    closers.push(() => journal.close());
    const intakeBus = await connectService(busIdentity, 'intake', { instanceId: 'intake' });
    closers.push(() => intakeBus.close());
    const limits = { maxUploadBytes: config.limits.maxUploadBytes, maxPixels: config.limits.maxPixels };
    const intake = createIntake({
      bus: intakeBus,
      blobs,
      journal,
      limits,
      knows: (id) => orchestrator.status(id) !== undefined,
      stored: (id) => store.onDisk(id),
      capacity: () => ({ held: orchestrator.stats.running + orchestrator.stats.queued, max: config.orchestrator.maxConcurrent + config.orchestrator.maxQueue }),
      storage,
      quota,
      logger: log,
      clock,
    });
    closers.push(() => intake.stop());
    await intake.recover();

    // Technicians' labels: stored durably, then published by the intake's client (their producer).
    const examples = openExampleStore(path.join(dataDir, EXAMPLES_FILE), { onSetAside });
    examplesRef = examples;
    closers.push(() => {
      // The uplink stops after this store closes: its last events must not read a closed file.
      examplesRef = undefined;
      examples.close();
    });
    // The in-process head follows the labels: refitted now and after each new one.
    const refitter = createHeadRefitter({ examples: (limit) => examples.list({ limit }), exampleCount: () => examples.count(), recognizer, logger: log });
    refitterRef = refitter;
    closers.push(() => refitter.idle());
    refitter.schedule();
    const teacher = createTeacher({
      bus: intakeBus,
      store: examples,
      analysis: (id) => orchestrator.status(id),
      embeddingOf: (v) => readEmbedding(blobs, v),
      clock,
      logger: log,
      onStoreError: (err) => void storage.report(err, "technicians' labels"),
      onLabelled: () => refitter.schedule(),
    });
    const resent = await teacher.republishPending();
    if (resent > 0) log.info({ resent }, 're-published labels stored before a restart');

    // The UI's live feed: an observer client (events only; the broker refuses it anything else).
    const uiBus = await connectObserver(busIdentity, 'ui');
    closers.push(() => uiBus.close());
    const events = await createEventFeed(uiBus, { thumbnailOf: (sha) => readThumbnailBase64(blobs, sha), resultsOf });
    closers.push(() => events.stop());

    const app = await buildApp(
      {
        gatewayId: config.gatewayId,
        // Technician tokens are verified offline: the device key in dataDir, the relay's public key from the config.
        tokens: createTokenVerifier({
          gatewayId: config.gatewayId,
          deviceKey: readOrCreateDeviceKey(dataDir, log),
          relayPublicKey: relayPublicKeyFrom(config.auth),
          maxTtlS: config.auth.maxTokenTtlS,
        }),
        limits,
        intake,
        orchestrator,
        store,
        device,
        references: createReferenceRegistrar({ blobs, device, recognizer, limits, storage, visionProblem: () => vision?.visionProblem?.() ?? null }),
        teacher,
        refit: () => refitter.last(),
        refitProblem: () => refitter.problem(),
        broker,
        orchestratorBus: orchBus,
        buses: () => ({
          orchestrator: orchBus,
          intake: intakeBus,
          ui: uiBus,
          ...(uplink.localBus ? { uplink: uplink.localBus } : {}),
          ...Object.fromEntries(services.map((s) => [s.name, s.bus])),
        }),
        uplink: () => uplink.health(),
        recognizerInfo: () => recognizer()?.info(),
        visionProblem: () => vision?.visionProblem?.() ?? null,
        servicesInProcess: { ...config.services },
        plan: config.orchestrator.plan,
        storage: () => ({ ...storage.status(), quota: quota.status(), stateStore: store.stats.retrying, outbox: outbox?.stats.retrying, setAside }),
        uptimeMs: () => clock.monotonic() - startedMono,
        events,
        thumbnailOf: (sha) => readThumbnailBase64(blobs, sha),
      },
      { logger: log, timeouts: { idleMs: config.http.idleTimeoutMs, requestMs: config.http.requestTimeoutMs } },
    );
    closers.push(() => app.close());
    await app.listen({ host: config.http.host, port: config.http.port });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : config.http.port;
    const shownHost = config.http.host === '0.0.0.0' ? '127.0.0.1' : config.http.host;
    const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`;
    log.info({ url, services: services.map((s) => s.name) }, `agent HTTP API listening on ${url}`);

    return {
      config,
      broker,
      orchestrator,
      store,
      orchestratorBus: orchBus,
      busIdentity,
      blobs,
      device,
      history,
      intake,
      teacher,
      refitter,
      uplink,
      services,
      recognizer,
      http: { app, url },
      stop: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
