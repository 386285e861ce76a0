import path from 'node:path';
import type { AgentConfig } from '@tu/firmware-config';
import type { Logger } from '@tu/shared';
import { openBlobStore } from './blobs/store.js';
import { resolveBusSecret } from './broker/credentials.js';
import type { BusIdentity } from './bus.js';
import { dropMqttNumberCache } from './mqtt-number-cache.js';
import { openPhotoHistory } from './device/history.js';
import { openDeviceState } from './device/state.js';
import type { SetAside } from './fs/set-aside.js';
import { runAnalysisService, type AnalysisServiceName, type RunningAnalysisService } from './services/run.js';

/**
 * Runs ONE analysis service as its own process: connects over TCP to the agent's broker
 * (credentials derived from the bus secret, as in-process services) and shares the
 * agent's data directory (blob store, device state, photo history).
 */
export async function startServiceProcess(name: AnalysisServiceName, config: AgentConfig, logger: Logger): Promise<RunningAnalysisService & { close(): Promise<void> }> {
  dropMqttNumberCache();
  const dataDir = path.resolve(config.dataDir);
  const identity: BusIdentity = {
    gatewayId: config.gatewayId,
    secret: resolveBusSecret({ ...config.bus, dataDir }),
    transport: { kind: 'tcp', host: config.broker.host === '0.0.0.0' ? '127.0.0.1' : config.broker.host, port: config.broker.port },
    logger,
    maxPayloadBytes: config.broker.maxPayloadBytes,
  };
  const blobs = await openBlobStore(dataDir);
  // The agent moves damaged files aside as well; whichever process opens them first does it.
  const onSetAside = (s: SetAside) => logger.warn(s, `${s.what} was damaged; moved it aside`);
  const device = await openDeviceState(dataDir, { maxReferences: config.comparison.maxReferences, onSetAside, logger });
  const history = openPhotoHistory(path.join(dataDir, 'history.sqlite'), {
    onSetAside,
    maxPerMachine: config.comparison.historyPerMachine,
    durability: config.orchestrator.durability,
    // A full disk leaves the photo out of the history; the analysis still completes.
    onWriteError: (err) => logger.error({ err: err.message, code: 'STORAGE_FAILED' }, 'recording the photo history failed'),
  });
  try {
    const svc = await runAnalysisService(name, { config, identity, blobs, device, history, logger, reloadDevice: true });
    return Object.assign(svc, {
      async close() {
        await svc.stop();
        history.close();
      },
    });
  } catch (err) {
    history.close();
    throw err;
  }
}
