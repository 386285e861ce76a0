import { bytes, count, duration, when } from '../format';
import type { UplinkHealth } from '../schemas';
import { connectionText, lostEvents } from '../uplink';

/** The cloud uplink in the health panel: the connection, what waits to be sent, and what will never arrive. */
export function UplinkDetail({ u }: { u: UplinkHealth }) {
  // What 'disabled' means for the technician's results, in the words the teach box uses too (Teach.tsx).
  if (u.state === 'disabled') return <span data-testid="uplink-detail">off: results and labels stay on this gateway, nothing is sent to the office{u.reason ? ` (${u.reason})` : ''}.</span>;
  const depth = u.queueDepth ?? 0;
  const lost = lostEvents(u);
  return (
    <ul class="facts" data-testid="uplink-detail">
      <li>Relay: {connectionText(u)}</li>
      <li data-testid="uplink-waiting">
        {depth === 0
          ? 'Nothing waiting to be sent.'
          : `${count(depth, 'event')} waiting to be sent${u.queueBytes !== undefined ? ` (${bytes(u.queueBytes)})` : ''}${u.limits ? ` of at most ${count(u.limits.maxEvents, 'event')} or ${bytes(u.limits.maxBytes)}` : ''}${u.oldestUndeliveredAgeMs != null ? `; the oldest waiting for ${duration(u.oldestUndeliveredAgeMs / 1000)}` : ''}${u.full ? '; the outbox is full' : ''}.`}
      </li>
      <li>{u.lastDeliveryAt ? `Last event delivered to the relay: ${when(u.lastDeliveryAt)}.` : 'Nothing delivered to the relay since the gateway started.'}</li>
      {/* The results the office will never see: the one fact a technician must not miss here. */}
      <li class={lost.length ? 'error' : undefined} data-testid="uplink-lost">
        {lost.length ? (
          <>
            <strong>Never reaching the office:</strong> {lost.join('; ')}.
          </>
        ) : (
          'No event lost on the way to the office.'
        )}
      </li>
      {u.lastError && <li class="error">Last error: {u.lastError.message}</li>}
    </ul>
  );
}
