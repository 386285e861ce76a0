import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mayRetry, retryDelay, type RetryPolicy } from '@tu/shared';
import { retrySchema } from '@tu/firmware-config';

const exact = { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0, multiplier: 2 };
const mid = () => 0.5; // random() = 0.5 puts the jitter at zero

test('the first retry is number 0 and waits initialDelayMs', () => {
  assert.is(retryDelay(0, exact), 100);
  assert.is(retryDelay(0, { ...exact, jitter: 0.5 }, mid), 100);
});

test('delays grow by the multiplier per retry, then stay at the cap', () => {
  assert.equal([0, 1, 2, 3, 4, 10, 1000].map((n) => retryDelay(n, exact)), [100, 200, 400, 800, 1000, 1000, 1000]);
  const triple = { ...exact, multiplier: 3, maxDelayMs: 100_000 };
  assert.equal([0, 1, 2, 3].map((n) => retryDelay(n, triple)), [100, 300, 900, 2700]);
});

test('without a multiplier (the uplink reconnect config) delays double', () => {
  const reconnect = { initialDelayMs: 500, maxDelayMs: 60_000, jitter: 0 };
  assert.equal([0, 1, 2, 3].map((n) => retryDelay(n, reconnect)), [500, 1000, 2000, 4000]);
  assert.is(retryDelay(1_000_000, reconnect), 60_000, 'a huge retry count stays finite and capped');
});

test('jitter stays within +/- the fraction of the capped delay, at both ends of random()', () => {
  const p = { ...exact, jitter: 0.5 };
  assert.is(retryDelay(0, p, () => 0), 50);
  assert.is(retryDelay(0, p, () => 0.999999), 150);
  assert.is(retryDelay(20, p, () => 0), 500, 'the jitter applies to the capped delay');
  assert.is(retryDelay(20, p, () => 0.999999), 1500);
  for (let i = 0; i < 200; i++) {
    const d = retryDelay(3, p, Math.random);
    assert.ok(d >= 400 && d <= 1200, `retry 3 = 800 +/- 50%: ${d}`);
  }
  assert.is(retryDelay(0, { ...exact, jitter: 1 }, () => 0), 0, 'never negative');
});

test('maxAttempts counts every attempt, the first included', () => {
  const p: RetryPolicy = { ...exact, maxAttempts: 3 };
  assert.equal([1, 2, 3, 4].map((made) => mayRetry(p, made)), [true, true, false, false]);
  assert.is(mayRetry({ maxAttempts: 1 }, 1), false, 'maxAttempts 1: no retry at all');
});

test('the firmware-config retry section is a RetryPolicy as it is', () => {
  const cfg: RetryPolicy = retrySchema.parse({});
  assert.is(cfg.maxAttempts, 3);
  assert.ok(mayRetry(cfg, 1));
  assert.is(retryDelay(0, cfg, mid), cfg.initialDelayMs);
});

test.run();
