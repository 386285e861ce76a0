/** Which limit set an event aside: the relay's word (tu/{gw}/sys/limits) or this gateway's uplink.maxEventBytes. */
export type LimitSource = 'relay' | 'config';

/** Why an event is not sent: stored with it in the outbox (outbox-db.ts, table `undeliverable`) and shown in health. */
export interface TooLarge {
  limitBytes: number;
  limitBy: LimitSource;
  /** One sentence for the technician or operator: the size, the limit, and which setting to raise. */
  reason: string;
}

/**
 * The largest event the uplink sends: the smaller of `uplink.maxEventBytes` and what the relay
 * said when the gateway connected (`tu/{gw}/sys/limits`, relayLimitsSchema in
 * shared/src/gateway-contract.ts).
 *
 * Why the gateway decides before sending: the relay refuses a larger publish by closing the
 * connection (relay/src/ingress/embedded.ts), which looks like any lost connection. The outbox
 * sends in order and re-sends what was not acknowledged after a reconnect (forwarder.ts), so the
 * same event went out after every reconnect and every later event waited behind it, until
 * `uplink.outbox.maxAgeMs` expired them all. An event over the limit is set aside in the outbox
 * instead (outbox.ts, `setAside`): kept, counted, named in health, and sent by itself once the
 * limit allows it (`fits`).
 *
 * Why the smaller of the two: the relay's word is the truth about that relay, but a relay behind
 * an external broker (or an older relay) says nothing, and then the configured value is all the
 * gateway knows; an operator who set it lower meant it. Why the relay's word is kept across
 * reconnects (in memory, not on disk): the first publish on a connection may leave before the
 * relay's message arrives; after a restart the first too-large event costs one closed connection,
 * then the relay has spoken and it is set aside.
 */
export class EventSizeLimit {
  #relay: number | undefined;

  constructor(readonly configured: number) {}

  /** What the relay said it takes; undefined until it has spoken (since this start). */
  get relay(): number | undefined {
    return this.#relay;
  }

  /** The limit in force. */
  get bytes(): number {
    return this.#relay === undefined ? this.configured : Math.min(this.configured, this.#relay);
  }

  get by(): LimitSource {
    return this.#relay !== undefined && this.#relay < this.configured ? 'relay' : 'config';
  }

  /** Records what the relay said; true when that changed the limit in force. */
  relaySaid(maxPayloadBytes: number): boolean {
    const before = this.bytes;
    const first = this.#relay === undefined;
    this.#relay = maxPayloadBytes;
    return first || this.bytes !== before;
  }

  /** Undefined when an event of `bytes` may be sent; otherwise why not. */
  check(bytes: number): TooLarge | undefined {
    const limitBytes = this.bytes;
    if (bytes <= limitBytes) return undefined;
    const limitBy = this.by;
    const reason =
      limitBy === 'relay'
        ? `${bytes} bytes, over the ${limitBytes} bytes the relay accepts (its ingress.maxPayloadBytes): raise that on the relay`
        : `${bytes} bytes, over uplink.maxEventBytes (${limitBytes}) of this gateway: raise it if the relay accepts more`;
    return { limitBytes, limitBy, reason };
  }

  /**
   * Whether an event set aside earlier may go now. One set aside by the relay's limit waits until
   * the relay has spoken again (after a restart its limit is not known yet: sending it blind would
   * cost a closed connection if the limit still stands).
   */
  fits(e: { bytes: number; limitBy: LimitSource }): boolean {
    if (e.limitBy === 'relay' && this.#relay === undefined) return false;
    return e.bytes <= this.bytes;
  }
}
