import type { Logger } from '@tu/shared';
import type { Registry } from './registry.js';

/**
 * Re-reads the whole registry every `everyMs` (config `ingress.credentialCheckMs`; one query,
 * `Registry.refresh`), so a gateway revoked or given a new secret through another instance, the
 * CLI or straight in the database is known to this instance within that time. With the embedded
 * broker the ingress then closes such a gateway's open connections (`afterRefresh`); with an
 * external broker, whose logins the relay never sees, the ingest pipeline refuses the revoked
 * gateway's events from the refreshed cache (relay/src/ingest/pipeline.ts). RabbitMQ re-reads per
 * gateway every `cacheTtlMs` instead, the broker's own auth cache TTL (relay/src/ingress/rabbitmq.ts).
 * A re-read still running when the next is due is not doubled. Returns the stop function.
 */
export function refreshRegistryEvery(opts: { registry: Registry; everyMs: number; logger: Logger; afterRefresh?: () => void }): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    opts.registry
      .refresh()
      .then(() => opts.afterRefresh?.())
      .catch((err: Error) => opts.logger.error({ err: err.message }, 'credential check failed (registry unreadable); revocations made elsewhere apply after the next check that reads it'))
      .finally(() => (running = false));
  }, opts.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
