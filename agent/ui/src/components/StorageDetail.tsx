import { bytes, count, pct, when } from '../format';
import type { StorageHealth } from '../schemas';

/** The data directory in the health panel: free space, the photos' quota, failed writes (agent/src/http/routes/health.ts `storage`). */
export function StorageDetail({ s }: { s: StorageHealth }) {
  const q = s.quota;
  const evicted = [q.evictedBlobs ? count(q.evictedBlobs, 'photo') : '', q.evictedHistory ? count(q.evictedHistory, 'history entry', 'history entries') : ''].filter(Boolean);
  return (
    <ul class="facts" data-testid="storage-detail">
      {s.state === 'full' && (
        <li class="error">
          <strong>Full{s.since ? ` since ${when(s.since)}` : ''}:</strong> new photos and analyses are refused{s.where ? ` (${s.where} could not write)` : ''}.
        </li>
      )}
      <li>
        {s.freeBytes != null
          ? `Free space: ${bytes(s.freeBytes)}${s.totalBytes != null ? ` of ${bytes(s.totalBytes)}` : ''}; below ${bytes(s.minFreeBytes)} new photos are refused.`
          : `Free space: not reported by this system; below ${bytes(s.minFreeBytes)} new photos are refused.`}
      </li>
      <li>
        Photos and comparison history: {bytes(q.usedBytes)} of their {bytes(q.maxBytes)} quota ({pct(q.maxBytes ? q.usedBytes / q.maxBytes : 0)}).
        {evicted.length > 0 && ` Since the gateway started, the oldest were removed to make room: ${evicted.join(', ')}.`}
        {q.refused > 0 && ` ${count(q.refused, 'upload')} refused since the gateway started: nothing could be removed to make room.`}
      </li>
      {s.writeErrors > 0 && <li class="error">{count(s.writeErrors, 'write error')} since the gateway started.</li>}
    </ul>
  );
}
