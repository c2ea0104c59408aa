/**
 * The outcome counters reach the stats object (what GET /v1/admin/stats reads from any
 * isolate) without a later request to carry them, since an isolate may be evicted once idle,
 * and an isolate writes them at most once per STATS_FLUSH_INTERVAL_MS. These tests use the
 * 1 s default; vitest.config.ts sets 0 for every other test.
 */
import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RateLimiterDO } from '../ingest/rate-limiter-do.ts';
import { anonId, collect, makeEvent } from '../ingest/test-support.ts';
import { count, flushStats, scheduleStatsFlush, statsFlushIntervalMs } from './index.ts';

/** The Worker's env with STATS_FLUSH_INTERVAL_MS set to `raw`. */
function withInterval(raw: unknown): Env {
  return { ...env, STATS_FLUSH_INTERVAL_MS: raw } as unknown as Env;
}

/** The deployed default: one store a second. */
const everySecond = withInterval('1000');

/** The counters as the stats object holds them, not this isolate's pending counts. */
async function stored(): Promise<Record<string, number>> {
  return (await env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName('stats')).readCounts()) as Record<
    string,
    number
  >;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('ingest counts', () => {
  it('are stored by the request that made them, though no other request comes', async () => {
    const before = (await stored()).accepted ?? 0;
    // Two requests in a row: the second ends within a second of the first one's store.
    expect((await collect([makeEvent(anonId('stored'))], { env: everySecond })).status).toBe(200);
    expect((await collect([makeEvent(anonId('stored'))], { env: everySecond })).status).toBe(200);
    // Both requests' background work is over, and no request comes to carry the second count.
    expect((await stored()).accepted ?? 0).toBe(before + 2);
  });

  it('made within a second of a store share one write, taken once the second is up', async () => {
    await flushStats(everySecond);
    const writes = vi.spyOn(RateLimiterDO.prototype, 'addCounts');
    const before = (await stored()).invalid ?? 0;
    const scheduled: (Promise<void> | undefined)[] = [];
    for (let i = 0; i < 10; i++) {
      count('invalid');
      scheduled.push(scheduleStatsFlush(everySecond));
    }
    // The first request's background work holds the store; the nine others hold nothing.
    expect(scheduled.filter((p) => p === undefined)).toHaveLength(9);
    expect(writes).not.toHaveBeenCalled();
    await Promise.all(scheduled);
    expect(writes).toHaveBeenCalledTimes(1);
    expect((await stored()).invalid ?? 0).toBe(before + 10);
    // A count after that store schedules the next one.
    count('invalid');
    const next = scheduleStatsFlush(everySecond);
    expect(next).toBeDefined();
    await next;
    expect(writes).toHaveBeenCalledTimes(2);
    expect((await stored()).invalid ?? 0).toBe(before + 11);
  });

  it('schedule nothing when there is nothing to store', async () => {
    await flushStats(everySecond);
    expect(scheduleStatsFlush(everySecond)).toBeUndefined();
  });
});

describe('STATS_FLUSH_INTERVAL_MS', () => {
  it('is read in ms, and an unusable value applies the 1 s default and says so', () => {
    expect(statsFlushIntervalMs(everySecond)).toBe(1000);
    expect(statsFlushIntervalMs(withInterval('0'))).toBe(0);
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    for (const raw of ['1s', '-5', '', '60000']) expect(statsFlushIntervalMs(withInterval(raw))).toBe(1000);
    expect(errors.mock.calls.map(([line]) => String(line))).toContain(
      JSON.stringify({
        level: 'error',
        msg: 'STATS_FLUSH_INTERVAL_MS "1s" is not 0 to 10000 ms; 1000 ms apply',
      }),
    );
  });
});
