import { parseCollectBody } from '@attune/shared-schema';
import { LIMITS } from '@attune/shared-schema/constants';
import { describe, expect, it, vi } from 'vitest';
import type { QueuedEvent } from '../queue/queue.ts';
import { batchSize, collectBody, utf8Bytes } from './batching.ts';

const queued = (id: string, json: string): QueuedEvent => ({ id, json, bytes: utf8Bytes(json) });
const event = (id: string, size = 10) => queued(id, JSON.stringify({ id, pad: 'x'.repeat(size) }));
/** An event of exactly `bytes` bytes (batchSize reads only its byte count). */
const filler = (id: string, bytes: number) => queued(id, 'x'.repeat(bytes));

describe('batchSize', () => {
  it('takes every event when under both limits', () => {
    expect(batchSize([event('a'), event('b')], 'pk_test', 20)).toBe(2);
  });

  it('stops at the count limit', () => {
    const events = Array.from({ length: 30 }, (_, i) => event(`e${i}`));
    expect(batchSize(events, 'pk_test', 20)).toBe(20);
  });

  it('stops before the byte limit, counting the envelope and the commas exactly', () => {
    // Four events and three commas fill the body to the byte: a fifth event does not fit,
    // and one byte more in the fourth leaves it out too.
    const room = LIMITS.browserBatchBytes - utf8Bytes(collectBody('pk_test', [])) - 3;
    const quarter = Math.floor(room / 4);
    const exact = [...['a', 'b', 'c'].map((id) => filler(id, quarter)), filler('d', room - 3 * quarter)];
    expect(utf8Bytes(collectBody('pk_test', exact))).toBe(LIMITS.browserBatchBytes);
    expect(batchSize([...exact, filler('e', 1)], 'pk_test')).toBe(4);
    const over = [...exact.slice(0, 3), filler('d', room - 3 * quarter + 1), filler('e', 1)];
    expect(batchSize(over, 'pk_test')).toBe(3);
  });

  it('counts UTF-8 bytes, not characters', () => {
    // 20,000 characters fit in a batch; their 60,000 UTF-8 bytes do not.
    const wide = [event('a'), queued('b', JSON.stringify({ t: '€'.repeat(20_000) }))];
    expect(batchSize(wide, 'k')).toBe(1);
  });

  it('always sends at least one event, and keeps browser batches under the 64 KB beacon quota', () => {
    expect(batchSize([filler('a', LIMITS.browserBatchBytes + 1), filler('b', 1)], 'k')).toBe(1);
    const big = Array.from({ length: 10 }, (_, i) => event(`e${i}`, 20_000));
    const n = batchSize(big, 'k');
    expect(utf8Bytes(collectBody('k', big.slice(0, n)))).toBeLessThanOrEqual(LIMITS.browserBatchBytes);
    expect(LIMITS.browserBatchBytes).toBeLessThan(64 * 1024);
  });
});

describe('collectBody', () => {
  it('is a collect envelope the Worker accepts', () => {
    const now = new Date();
    const events = [1, 2].map((n) =>
      queued(
        `01J${String(n).padStart(23, '0')}`,
        JSON.stringify({
          id: `01J${String(n).padStart(23, '0')}`,
          type: 'track',
          name: 'product.viewed',
          timestamp: now.toISOString(),
          anonymousId: 'anon',
          properties: { productId: `p${n}` },
          schemaVersion: 1,
        }),
      ),
    );
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(now);
    const parsed = parseCollectBody(collectBody('pk_test', events));
    vi.useRealTimers();
    expect(parsed).toMatchObject({ ok: true, writeKey: 'pk_test', sentAt: now.toISOString(), rejected: [] });
    expect(parsed.ok && parsed.events.map((e) => e.event.properties?.productId)).toEqual(['p1', 'p2']);
  });
});
