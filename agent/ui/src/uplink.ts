import { count, duration, num } from './format';
import type { UplinkHealth } from './schemas';

/**
 * How the technician UI words the cloud uplink (agent/src/uplink/uplink.ts UplinkHealth), in one
 * place for the banner and the health panel.
 */

/**
 * Without a relay for less than this and no error: the normal connect at start-up or after a
 * dropped connection, not an outage. The forwarder's state cycles connecting/offline on every
 * attempt (agent/src/uplink/forwarder.ts), so only how long and lastError tell them apart.
 */
export const CONNECT_GRACE_MS = 30_000;

const forMs = (ms: number | null | undefined): string => (ms == null ? '' : ` for ${duration(ms / 1000)}`);
const waiting = (u: UplinkHealth): string => `Results are kept on the gateway (${count(u.queueDepth ?? 0, 'event')} waiting) and sent when the gateway reaches the relay.`;

/** The connection in a few words (panel): connected, connecting since start-up, or not connected and for how long. */
export function connectionText(u: UplinkHealth): string {
  if (u.state === 'online') return 'connected';
  if (u.lastError) return `not connected${forMs(u.disconnectedMs)}, retrying`;
  if (u.state === 'connecting') return `connecting${forMs(u.disconnectedMs)}, no answer yet`;
  return `not connected${forMs(u.disconnectedMs)}, retrying`;
}

/** The banner's sentence while the relay is not connected, or undefined while that is only the normal connect. */
export function connectionAlert(u: UplinkHealth): string | undefined {
  if (u.state === 'disabled' || u.state === 'online') return undefined;
  // "Unreachable" would be a guess: an attempt failed (with the relay's or the network's words), or none answered for long.
  if (u.lastError) return `Not connected to the cloud relay${forMs(u.disconnectedMs)}: ${u.lastError.message}. ${waiting(u)}`;
  if ((u.disconnectedMs ?? 0) < CONNECT_GRACE_MS) return undefined;
  return `Not connected to the cloud relay${forMs(u.disconnectedMs)}: ${u.state === 'connecting' ? 'still connecting, no answer yet' : 'retrying'}. ${waiting(u)}`;
}

/** What a full outbox does to new events, as the gateway is configured (uplink.outbox.whenFull). */
export function fullAlert(u: UplinkHealth): string | undefined {
  if (!u.full) return undefined;
  if (u.whenFull === 'drop-oldest')
    return `The uplink outbox is full: the oldest waiting events are dropped to make room for new ones; they never reach the office (${num(u.dropped ?? 0)} dropped so far).`;
  if (u.whenFull === 'refuse-new') return `The uplink outbox is full: new events are refused; they never reach the office (${num(u.refused ?? 0)} refused so far).`;
  return 'The uplink outbox is full: new events are being dropped or refused.';
}

/**
 * The events that will never reach the office, each count with its meaning (agent/src/uplink/outbox.ts
 * counts them over the outbox's life, across restarts); [] when none was lost.
 */
export function lostEvents(u: UplinkHealth): string[] {
  const lost: string[] = [];
  if (u.dropped) lost.push(`${num(u.dropped)} dropped (the oldest waiting, to make room while the outbox was full)`);
  if (u.refused) lost.push(`${num(u.refused)} refused (not taken in: the outbox was full, or the event was larger than the whole outbox)`);
  if (u.expired) lost.push(`${num(u.expired)} expired (waited longer than the outbox keeps events${u.limits ? `: ${duration(u.limits.maxAgeMs / 1000)}` : ''})`);
  return lost;
}
