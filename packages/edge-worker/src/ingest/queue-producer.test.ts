/**
 * The queue producer: concurrent ingest requests share one sendBatch, and every
 * request's messages still arrive, in the order each person's events were accepted.
 */
import { env } from 'cloudflare:workers';
import { eventMessagesOf, type QueueMessage } from '@attune/shared-schema';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { anonId, collect, productView } from './test-support.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('queue producer', () => {
  it('sends the messages of concurrent requests together, each person in order', async () => {
    const calls: unknown[][] = [];
    vi.spyOn(env.EVENTS, 'sendBatch').mockImplementation(async (items) => {
      calls.push([...items].map((i) => i.body));
      return undefined as unknown as QueueSendBatchResponse;
    });
    const people = [anonId('q1'), anonId('q2'), anonId('q3')];
    const responses = await Promise.all(
      people.map((a) =>
        collect([
          productView(a, 'p-1', 'outdoor'),
          productView(a, 'p-2', 'outdoor'),
          productView(a, 'p-3', 'kitchen'),
        ]),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    // Fewer sends than requests: they shared at least one.
    expect(calls.length).toBeLessThan(people.length);
    const events = eventMessagesOf(calls.flat() as QueueMessage[]);
    for (const a of people) {
      const mine = events.filter((m) => m.event.anonymousId === a).map((m) => m.event.properties?.productId);
      expect(mine).toEqual(['p-1', 'p-2', 'p-3']);
    }
  });
});
