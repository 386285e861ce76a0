/**
 * Token buckets keyed by a string (a remote address, a username): each key may spend a burst
 * of `burst` tokens, refilled at `perSecond`. Used for every per-address or per-login limit
 * (bus/admission.ts, bus/login-throttle.ts). Bounded: full buckets are forgotten first.
 */
export interface BucketRate {
  burst: number;
  perSecond: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  readonly #buckets = new Map<string, Bucket>();
  constructor(
    private readonly rate: BucketRate,
    private readonly now: () => number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Tokens left for `key` now (a key never seen has a full burst). */
  available(key: string): number {
    const b = this.#buckets.get(key);
    if (!b) return this.rate.burst;
    return Math.min(this.rate.burst, b.tokens + ((this.now() - b.at) / 1000) * this.rate.perSecond);
  }

  /** Spends one token; false (and nothing spent) when the bucket is empty. */
  take(key: string): boolean {
    const tokens = this.available(key);
    if (tokens < 1) return false;
    this.#set(key, tokens - 1);
    return true;
  }

  /** Spends one token even when empty (for counting failures); returns what is left. */
  spend(key: string): number {
    const left = Math.max(0, this.available(key) - 1);
    this.#set(key, left);
    return left;
  }

  /** Gives one token back (an attempt that turned out fine), up to the burst. */
  refund(key: string): void {
    if (this.#buckets.has(key)) this.#set(key, Math.min(this.rate.burst, this.available(key) + 1));
  }

  #set(key: string, tokens: number): void {
    if (!this.#buckets.has(key) && this.#buckets.size >= this.maxKeys) this.#forget();
    this.#buckets.set(key, { tokens, at: this.now() });
  }

  #forget(): void {
    for (const k of this.#buckets.keys()) if (this.available(k) >= this.rate.burst) this.#buckets.delete(k);
    // Still full of busy keys: forget the oldest rather than grow without bound.
    while (this.#buckets.size >= this.maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}
