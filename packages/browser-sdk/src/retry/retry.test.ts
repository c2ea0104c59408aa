import { describe, expect, it } from 'vitest';
import { backoffDelay, isRetryable, RETRY_CAP_MS, retryAfterMs, retryDelay } from './retry.ts';

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
    expect([0, 1, 2, 3].map((attempt) => backoffDelay(attempt, () => 0.999999))).toEqual([
      999, 1999, 3999, 7999,
    ]);
  });
  it('spreads delays over the whole range down to zero', () => {
    expect(backoffDelay(5, () => 0)).toBe(0);
    expect(backoffDelay(5, () => 0.5)).toBe(16_000);
  });
  it('never waits more than 60 s, however many attempts failed', () => {
    for (const attempt of [6, 10, 50, 1000]) {
      expect(backoffDelay(attempt, () => 0.999999)).toBeLessThan(RETRY_CAP_MS);
      expect(backoffDelay(attempt, () => 0.5)).toBe(30_000);
    }
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads delta-seconds', () => expect(retryAfterMs('7', now)).toBe(7000));
  it('reads an HTTP date', () => expect(retryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000));
  it('treats a past date as "now"', () => expect(retryAfterMs('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0));
  it('ignores a missing or unreadable header', () => {
    expect(retryAfterMs(null, now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
  });
  it('wins over backoff when present', () => {
    expect(retryDelay(0, '12', () => 0)).toBe(12_000);
    expect(retryDelay(3, null, () => 0.5)).toBe(4000);
  });
});
