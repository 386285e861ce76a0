import { TokenBuckets, type BucketRate } from './token-buckets.js';

/**
 * Failed logins, limited per remote address and per username, so a password guesser neither
 * gets many guesses nor slows down everyone else's login (the relay verifies a gateway
 * secret with scrypt, which queues on libuv's small thread pool). A refused attempt costs
 * nothing: no secret is checked.
 * - An address that used up its failures is refused until its bucket refills.
 * - A username that used up its failures is refused for addresses that have failed before;
 *   an address with a clean record still gets its try, so a guesser elsewhere cannot lock
 *   the real gateway out.
 */
export interface LoginThrottleLimits {
  failuresPerAddress: BucketRate;
  failuresPerUsername: BucketRate;
}

export const defaultLoginThrottleLimits: LoginThrottleLimits = {
  failuresPerAddress: { burst: 10, perSecond: 0.2 },
  failuresPerUsername: { burst: 10, perSecond: 0.2 },
};

export class LoginThrottle {
  /** checked: logins whose secret was checked; throttled: refused unchecked. */
  readonly stats = { throttled: 0, checked: 0 };
  readonly #byAddress: TokenBuckets;
  readonly #byUsername: TokenBuckets;
  readonly #addressBurst: number;

  constructor(limits: LoginThrottleLimits, now: () => number) {
    this.#byAddress = new TokenBuckets(limits.failuresPerAddress, now);
    this.#byUsername = new TokenBuckets(limits.failuresPerUsername, now);
    this.#addressBurst = limits.failuresPerAddress.burst;
  }

  /**
   * Whether to check this login at all (counts a refusal). An attempt that goes ahead spends
   * a failure in advance, so many guesses in flight at once cannot all slip through while
   * their secrets are being checked; `succeeded` gives it back.
   */
  attempt(address: string | undefined, username: string): boolean {
    const addressLeft = address === undefined ? this.#addressBurst : this.#byAddress.available(address);
    const refused = addressLeft < 1 || (this.#byUsername.available(username) < 1 && addressLeft < this.#addressBurst);
    if (refused) {
      this.stats.throttled++;
      return false;
    }
    this.stats.checked++;
    if (address !== undefined) this.#byAddress.spend(address);
    this.#byUsername.spend(username);
    return true;
  }

  /** The login was right: its advance failure is given back. */
  succeeded(address: string | undefined, username: string): void {
    if (address !== undefined) this.#byAddress.refund(address);
    this.#byUsername.refund(username);
  }
}
