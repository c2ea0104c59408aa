import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffDelay, isRetryable, RETRY_CAP_MS, retryAfterMs, retryDelay } from './retry.ts';

// The jitter draws from Math.random: pinned per call so the delays are exact.
const withRandom = (value: number, delay: () => number): number => {
  vi.spyOn(Math, 'random').mockReturnValue(value);
  return delay();
};
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('isRetryable', () => {
  it('retries timeouts, rate limits, server errors and network errors (status 0 is handled by the caller)', () => {
    for (const status of [408, 429, 500, 502, 503, 504, 599]) expect(isRetryable(status)).toBe(true);
  });
  it('does not retry other client errors', () => {
    for (const status of [400, 401, 403, 404, 413]) expect(isRetryable(status)).toBe(false);
  });
});

describe('backoffDelay (full jitter)', () => {
  it('grows the ceiling exponentially from 1 s', () => {
    expect([0, 1, 2, 3].map((attempt) => withRandom(0.999999, () => backoffDelay(attempt)))).toEqual([
      999, 1999, 3999, 7999,
    ]);
  });
  it('spreads delays over the whole range down to zero', () => {
    expect(withRandom(0, () => backoffDelay(5))).toBe(0);
    expect(withRandom(0.5, () => backoffDelay(5))).toBe(16_000);
  });
  it('never waits more than 60 s, however many attempts failed', () => {
    for (const attempt of [6, 10, 50, 1000]) {
      expect(withRandom(0.999999, () => backoffDelay(attempt))).toBeLessThan(RETRY_CAP_MS);
      expect(withRandom(0.5, () => backoffDelay(attempt))).toBe(30_000);
    }
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(now);
  });
  it('reads delta-seconds', () => expect(retryAfterMs('7')).toBe(7000));
  it('reads an HTTP date', () => expect(retryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT')).toBe(30_000));
  it('treats a past date as "now"', () => expect(retryAfterMs('Wed, 31 Dec 2025 23:00:00 GMT')).toBe(0));
  it('ignores a missing or unreadable header', () => {
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });
  it('wins over backoff when present', () => {
    expect(withRandom(0, () => retryDelay(0, '12'))).toBe(12_000);
    expect(withRandom(0.5, () => retryDelay(3, null))).toBe(4000);
  });
});
