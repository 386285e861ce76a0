import multipart from '@fastify/multipart';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { installErrorHandling, refuseFrameworkError, type Logger } from '@tu/shared';
import { installAccessControl } from './auth/access.js';
import { isImageUpload, MULTIPART_LIMITS, registerImageParsers } from './read-image.js';
import { eventsRoute } from './routes/events.js';
import { analysesRoutes } from './routes/analyses.js';
import { healthRoute } from './routes/health.js';
import { imagesRoute } from './routes/images.js';
import { labelsRoutes } from './routes/labels.js';
import { machineRoutes } from './routes/machine.js';
import { metricsRoute } from './routes/metrics.js';
import { uiRoute } from './routes/ui.js';
import type { AppDeps } from './sources.js';

/** Builds the agent's HTTP API (no listen: tests use inject()). */
export async function buildApp(deps: AppDeps, opts: { logger?: Logger; timeouts?: { idleMs: number; requestMs: number } } = {}): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    // Without them a stalled upload (a phone gone from the Wi-Fi without closing) kept its queue
    // place and its buffered body until the socket died, and enough of them refused every upload.
    ...(opts.timeouts ? { connectionTimeout: opts.timeouts.idleMs, requestTimeout: opts.timeouts.requestMs } : {}),
    // Per-request logs off (warn level); refusals and failures are logged by the error handler.
    ...(opts.logger ? { loggerInstance: opts.logger.child({ component: 'http' }, opts.logger.levelVal < 40 ? { level: 'warn' } : {}) as FastifyBaseLogger } : { logger: false }),
    // JSON bodies (machine profile) are small; images have their own limit.
    bodyLimit: 64 * 1024,
    // A malformed address gets the catalogue's answer too, not fastify's own body.
    frameworkErrors: refuseFrameworkError,
  });
  installErrorHandling(app, {
    // fastify's (or the multipart plugin's) 413 on a photo upload: over limits.maxUploadBytes.
    codeFor: (status, url) => (status === 413 && isImageUpload(url) ? 'UPLOAD_TOO_LARGE' : undefined),
    onRefused: (code, url) => {
      if (url.startsWith('/api/v1/images')) deps.intake.countRejection(code);
    },
  });
  registerImageParsers(app, deps.limits.maxUploadBytes);
  await app.register(multipart, { limits: { fileSize: deps.limits.maxUploadBytes, ...MULTIPART_LIMITS } });
  await app.register(websocket, { options: { maxPayload: 4096 } });
  // After the WebSocket plugin (its onRequest hook marks a handshake, so that a refused one has
  // its socket closed) and before any route (the table of roles is checked as routes are added).
  installAccessControl(app, deps.tokens);
  imagesRoute(app, deps);
  analysesRoutes(app, deps);
  labelsRoutes(app, deps);
  machineRoutes(app, deps);
  healthRoute(app, deps);
  metricsRoute(app, deps);
  eventsRoute(app, deps);
  await uiRoute(app, deps);
  return app;
}
