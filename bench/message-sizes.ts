/**
 * Payload sizes on the agent's local bus, per message type: hooks the aedes broker's `publish`
 * event (every message any client publishes, as the broker receives it) and records bytes per
 * `cmd/<type>` / `evt/<type>` (topic segments 2–3 of tu/{gw}/{kind}/{type}). Used by
 * bench/messages.bench.ts and test/messages.size.test.ts; docs/messages.md shows the table.
 */
import type { Aedes, AedesPublishPacket, Client } from 'aedes';

export interface SizeStats {
  count: number;
  max: number;
  median: number;
}

export interface MessageSizeRecorder {
  /** Bytes of every payload seen so far, by message type (`evt/analysis.completed`). */
  readonly sizes: ReadonlyMap<string, readonly number[]>;
  /** The largest payload of each type, its bytes and the payload itself (to see what is in it). */
  readonly largest: ReadonlyMap<string, { bytes: number; payload: string }>;
  stats(): Map<string, SizeStats>;
  /** Stops recording (removes the listener). */
  stop(): void;
}

/** `cmd/analysis.recognition.request` from `tu/gw-1/cmd/analysis.recognition.request`; undefined for other topics ($SYS, sys/…). */
export function messageType(topic: string): string | undefined {
  const parts = topic.split('/');
  if (parts[0] !== 'tu' || parts.length < 4 || (parts[2] !== 'cmd' && parts[2] !== 'evt')) return undefined;
  return `${parts[2]}/${parts[3]}`;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
};

/** Starts recording on a broker, e.g. `recordMessageSizes(agent.broker.aedes)`. */
export function recordMessageSizes(aedes: Aedes): MessageSizeRecorder {
  const sizes = new Map<string, number[]>();
  const largest = new Map<string, { bytes: number; payload: string }>();
  const onPublish = (packet: AedesPublishPacket, client: Client | null): void => {
    if (!client) return; // the broker's own messages ($SYS, wills)
    const type = messageType(packet.topic);
    if (!type) return;
    const payload = packet.payload;
    const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
    let list = sizes.get(type);
    if (!list) sizes.set(type, (list = []));
    list.push(bytes);
    if (bytes > (largest.get(type)?.bytes ?? -1)) largest.set(type, { bytes, payload: payload.toString() });
  };
  aedes.on('publish', onPublish);
  return {
    sizes,
    largest,
    stats() {
      return new Map([...sizes].sort(([a], [b]) => a.localeCompare(b)).map(([t, xs]) => [t, { count: xs.length, max: Math.max(...xs), median: median(xs) }]));
    },
    stop: () => void aedes.removeListener('publish', onPublish),
  };
}

/**
 * A markdown table of the recorded sizes; `before` (type → max bytes, e.g. an earlier run's
 * figures) adds a column to compare with.
 */
export function sizeTable(stats: Map<string, SizeStats>, before?: Record<string, number>): string {
  const head = before ? '| message | count | median bytes | max bytes | max before |\n|---|---:|---:|---:|---:|' : '| message | count | median bytes | max bytes |\n|---|---:|---:|---:|';
  const rows = [...stats].map(([t, s]) => `| ${t} | ${s.count} | ${s.median} | ${s.max} |${before ? ` ${before[t] ?? 'n/a'} |` : ''}`);
  return [head, ...rows].join('\n');
}
