/**
 * The queue producer: requests that overlap, each in its own request context as in
 * production, share queue sends, and every request's messages still reach the queue —
 * also when a send is slow and the next requests arrive while it is in flight.
 */
import { env, exports } from 'cloudflare:workers';
import { eventMessagesOf, type QueueMessage } from '@attune/shared-schema';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { anonId, ORIGIN, productView, recordQueue, WRITE_KEY } from './test-support.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

let nextIp = 0;
/**
 * A collect request through the Worker's real entry point: a request context of its own.
 * Each from its own address, as different visitors are (one address would meet its rate limit).
 */
function collectInOwnContext(batch: unknown[]): Promise<Response> {
  nextIp++;
  return exports.default.fetch('http://attune.test/v1/collect', {
    method: 'POST',
    headers: {
      origin: ORIGIN,
      'content-type': 'text/plain;charset=UTF-8',
      'cf-connecting-ip': `198.51.100.${nextIp % 250}`,
    },
    body: JSON.stringify({ writeKey: WRITE_KEY, sentAt: new Date().toISOString(), batch }),
  });
}

function threeViews(a: string) {
  return [
    productView(a, 'p-1', 'outdoor'),
    productView(a, 'p-2', 'outdoor'),
    productView(a, 'p-3', 'kitchen'),
  ];
}

async function expectEveryoneSent(calls: QueueMessage[][], people: string[]): Promise<void> {
  const ofPerson = (a: string) =>
    eventMessagesOf(calls.flat())
      .filter((m) => m.event.anonymousId === a)
      .map((m) => m.event.properties?.productId);
  // The sends run after the responses (waitUntil): wait until every event is in, or time out.
  await vi.waitFor(
    () => {
      for (const a of people) expect(ofPerson(a)).toEqual(['p-1', 'p-2', 'p-3']);
    },
    { timeout: 5000, interval: 50 },
  );
}

describe('queue producer', () => {
  it('shares sends among overlapping requests, and sends every message, each person in order', async () => {
    const { calls } = recordQueue(env);
    const people = Array.from({ length: 12 }, (_, i) => anonId(`q${i}`));
    const responses = await Promise.all(people.map((a) => collectInOwnContext(threeViews(a))));
    expect(responses.map((r) => r.status)).toEqual(people.map(() => 200));
    await expectEveryoneSent(calls, people);
    // Fewer sends than requests: they shared.
    expect(calls.length).toBeLessThan(people.length);
  });

  it('sends the messages of requests that arrive while an earlier send is still in flight', async () => {
    // A send waiting on another request's send is a promise settled in another request's
    // context: workerd cancels such continuations, and the messages were silently lost.
    const { calls } = recordQueue(env, { delayMs: 150 });
    const first = Array.from({ length: 6 }, (_, i) => anonId(`w1-${i}`));
    const second = Array.from({ length: 6 }, (_, i) => anonId(`w2-${i}`));
    const wave1 = Promise.all(first.map((a) => collectInOwnContext(threeViews(a))));
    await new Promise((resolve) => setTimeout(resolve, 80));
    const wave2 = Promise.all(second.map((a) => collectInOwnContext(threeViews(a))));
    const statuses = [...(await wave1), ...(await wave2)].map((r) => r.status);
    expect(statuses).toEqual([...first, ...second].map(() => 200));
    await expectEveryoneSent(calls, [...first, ...second]);
  });

  it('retries a failed sendBatch on its own: the messages sent before it are not sent twice', async () => {
    // Twenty events of ~24 KB each: their messages take two sendBatch calls (256 KB each at most).
    const sent: QueueMessage[][] = [];
    let attempts = 0;
    vi.spyOn(env.EVENTS, 'sendBatch').mockImplementation(async (items) => {
      attempts++;
      if (attempts === 2) throw new Error('queue hiccup');
      sent.push([...items].map((item) => item.body as QueueMessage));
      return undefined as unknown as QueueSendBatchResponse;
    });
    const a = anonId('large-batch');
    const filler = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`note${i}`, 'x'.repeat(4000)]));
    const batch = Array.from({ length: 20 }, (_, i) =>
      productView(a, `p-${i}`, 'outdoor', {
        properties: { productId: `p-${i}`, category: 'outdoor', ...filler },
      }),
    );
    expect((await collectInOwnContext(batch)).status).toBe(200);
    const productIds = () =>
      eventMessagesOf(sent.flat())
        .filter((m) => m.event.anonymousId === a)
        .map((m) => m.event.properties?.productId);
    await vi.waitFor(() => expect(productIds()).toHaveLength(20), { timeout: 5000, interval: 50 });
    // Every event once: before, the retry sent the first call's messages (and co-visits) again.
    expect(new Set(productIds()).size).toBe(20);
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(attempts).toBe(sent.length + 1);
  });
});
