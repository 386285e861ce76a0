/** The gateway side of the uplink ↔ relay contract: which topics a gateway may use. */
export const statusTopic = (gatewayId: string): string => `tu/${gatewayId}/sys/status`;

export type PublishCheck = { ok: true; kind: 'event' | 'status' } | { ok: false; reason: string };

/** A gateway may publish `tu/{own}/evt/{type}` (QoS 1, not retained) and `tu/{own}/sys/status` (retained). */
export function checkGatewayPublish(gatewayId: string, topic: string, retain: boolean): PublishCheck {
  const p = topic.split('/');
  if (p[0] !== 'tu' || p[1] !== gatewayId) return { ok: false, reason: `topic ${topic.slice(0, 200)} is not under tu/${gatewayId}/` };
  if (p[2] === 'evt' && p.length === 4 && p[3]) {
    if (retain) return { ok: false, reason: 'events must not be retained' };
    return { ok: true, kind: 'event' };
  }
  if (topic === statusTopic(gatewayId)) return { ok: true, kind: 'status' };
  return { ok: false, reason: `topic ${topic.slice(0, 200)} is neither tu/${gatewayId}/evt/{type} nor tu/${gatewayId}/sys/status` };
}

/** `{"status":"online"|"offline"}` → boolean; undefined when malformed. */
export function parseStatus(payload: Buffer): boolean | undefined {
  try {
    const v = JSON.parse(payload.toString('utf8')) as { status?: unknown };
    if (v.status === 'online') return true;
    if (v.status === 'offline') return false;
  } catch {
    // malformed
  }
  return undefined;
}
