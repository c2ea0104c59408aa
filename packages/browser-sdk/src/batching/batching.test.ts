import { parseCollectBody } from '@attune/shared-schema';
import { LIMITS } from '@attune/shared-schema/constants';
import { describe, expect, it } from 'vitest';
import type { QueuedEvent } from '../queue/queue.ts';
import { batchSize, collectBody, utf8Bytes } from './batching.ts';

const queued = (id: string, json: string): QueuedEvent => ({ id, json, bytes: utf8Bytes(json) });
const event = (id: string, size = 10) => queued(id, JSON.stringify({ id, pad: 'x'.repeat(size) }));

describe('batchSize', () => {
  it('takes every event when under both limits', () => {
    expect(batchSize([event('a'), event('b')], 'pk_test', 20)).toBe(2);
  });

  it('stops at the count limit', () => {
    const events = Array.from({ length: 30 }, (_, i) => event(`e${i}`));
    expect(batchSize(events, 'pk_test', 20)).toBe(20);
  });

  it('stops before the byte limit, counting the envelope and the commas exactly', () => {
    const events = Array.from({ length: 10 }, (_, i) => event(`e${i}`, 100));
    const limit = utf8Bytes(collectBody('pk_test', events.slice(0, 4)));
    expect(batchSize(events, 'pk_test', 100, limit)).toBe(4);
    expect(batchSize(events, 'pk_test', 100, limit - 1)).toBe(3);
  });

  it('counts UTF-8 bytes, not characters', () => {
    const wide = [event('a'), queued('b', JSON.stringify({ t: '€'.repeat(100) }))];
    const ascii = utf8Bytes(collectBody('k', wide.slice(0, 1)));
    expect(batchSize(wide, 'k', 100, ascii + 200)).toBe(1);
  });

  it('always sends at least one event, and keeps browser batches under the 64 KB beacon quota by default', () => {
    const big = Array.from({ length: 10 }, (_, i) => event(`e${i}`, 20_000));
    expect(batchSize(big, 'k', 100, 10)).toBe(1);
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
    const parsed = parseCollectBody(collectBody('pk_test', events, now));
    expect(parsed).toMatchObject({ ok: true, writeKey: 'pk_test', sentAt: now.toISOString(), rejected: [] });
    expect(parsed.ok && parsed.events.map((e) => e.event.properties?.productId)).toEqual(['p1', 'p2']);
  });
});
