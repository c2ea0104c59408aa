/**
 * Per-person order across a batch's browsers (src/ingest/pipeline.ts): a batch's browsers are
 * applied in parallel, yet two of them can send to the same person (a server message naming
 * only its user, a browser batch carrying several browsers of one signed-in user), and that
 * person's events must still be applied in batch order.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { viewProfile } from '../profile/client.ts';
import {
  anonId,
  collect,
  envWithSites,
  makeEvent,
  ORIGIN,
  SITE,
  segment,
  signed,
  useRecordedQueue,
  WRITE_KEY,
  within,
} from './test-support.ts';

// Recorded, not sent: these tests read the pipeline's outcome, not its messages.
useRecordedQueue();

const consent = { categoryPreferences: { Analytics: true, Functional: true, Advertising: false } };

describe("a person's events in a batch of several browsers", () => {
  it('a trusted batch: the order a server message sends after a browser signs in empties the cart the browser filled', async () => {
    const userId = `u-${anonId()}`;
    const browser = anonId('b');
    // One time for all: the ProfileDO ignores a cart add made before the last order, so
    // distinct times would hide the order in which the events were applied.
    const timestamp = new Date().toISOString();
    const common = { context: { consent }, timestamp };
    // The browser's run to the person is its second (after its anonymous page view), while
    // the server message is its browser's first: unordered, the order arrived first.
    const res = await segment('/v1/batch', {
      batch: [
        { type: 'page', name: 'Home', anonymousId: browser, messageId: 'm1', ...common },
        {
          type: 'track',
          event: 'Product Added',
          userId,
          anonymousId: browser,
          properties: { product_id: 'p1', category: 'Games' },
          messageId: 'm2',
          ...common,
        },
        {
          type: 'track',
          event: 'Order Completed',
          userId,
          properties: { order_id: 'o1', total: 10, products: [{ product_id: 'p1' }] },
          messageId: 'm3',
          ...common,
        },
      ],
    });
    expect(await res.json()).toMatchObject({ accepted: 3, rejected: [] });
    const view = await viewProfile(env, SITE, `user:${userId}`);
    expect(view?.cart).toEqual([]);
    expect(view?.counters.orders).toBe(1);
    expect(view?.purchased).toEqual(['p1']);
    expect(view?.recentActions.map((r) => r.name)).toEqual([
      'order.completed',
      'cart.item.added',
      'page.viewed',
    ]);
  });

  it('a browser batch carrying two browsers of one signed-in user applies their events in batch order', async () => {
    const userId = `u-${anonId()}`;
    const signature = await signed(userId);
    const [a, b] = [anonId('a'), anonId('b')];
    const timestamp = new Date().toISOString();
    const user = { userId, userIdSignature: signature, timestamp };
    const res = await collect([
      makeEvent(a, 'page.viewed', { timestamp }),
      makeEvent(a, 'cart.item.added', { ...user, properties: { productId: 'p1' } }),
      makeEvent(b, 'order.completed', { ...user, properties: { orderId: 'o1', total: 10 } }),
    ]);
    expect(res.status).toBe(200);
    const view = await viewProfile(env, SITE, `user:${userId}`);
    expect(view?.cart).toEqual([]);
    expect(view?.counters.orders).toBe(1);
  });

  it("a person's event between two of another browser's splits that browser's run, so each lands in batch order", async () => {
    const userId = `u-${anonId()}`;
    const browser = anonId('b');
    const timestamp = new Date().toISOString();
    const common = { context: { consent }, timestamp, userId };
    const res = await segment('/v1/batch', {
      batch: [
        {
          type: 'track',
          event: 'Product Added',
          anonymousId: browser,
          properties: { product_id: 'p1' },
          messageId: 'm1',
          ...common,
        },
        {
          type: 'track',
          event: 'Order Completed',
          properties: { order_id: 'o1', total: 10 },
          messageId: 'm2',
          ...common,
        },
        {
          type: 'track',
          event: 'Product Added',
          anonymousId: browser,
          properties: { product_id: 'p2' },
          messageId: 'm3',
          ...common,
        },
      ],
    });
    expect(await res.json()).toMatchObject({ accepted: 3, rejected: [] });
    const view = await viewProfile(env, SITE, `user:${userId}`);
    expect(view?.cart).toEqual(['p2']);
    expect(view?.recentActions.map((r) => r.name)).toEqual([
      'cart.item.added',
      'order.completed',
      'cart.item.added',
    ]);
  });

  it('browsers whose runs cross two people in opposite orders do not wait on each other for ever', async () => {
    const [u1, u2] = [`u-${anonId()}`, `u-${anonId()}`];
    const [a, b] = [anonId('a'), anonId('b')];
    const timestamp = new Date().toISOString();
    const common = { context: { consent }, timestamp };
    const add = (userId: string, anonymousId: string, messageId: string) => ({
      type: 'track',
      event: 'Product Added',
      userId,
      anonymousId,
      properties: { product_id: 'p1' },
      messageId,
      ...common,
    });
    const order = (userId: string, anonymousId: string, messageId: string) => ({
      type: 'track',
      event: 'Order Completed',
      userId,
      anonymousId,
      properties: { order_id: messageId, total: 10 },
      messageId,
      ...common,
    });
    // Browser a: u1 then u2; browser b: u2 then u1.
    const res = await within(
      segment('/v1/batch', {
        batch: [add(u1, a, 'm1'), add(u2, b, 'm2'), order(u1, b, 'm3'), order(u2, a, 'm4')],
      }),
      5_000,
    );
    expect(res).not.toBe('timed out');
    for (const userId of [u1, u2]) {
      const view = await viewProfile(env, SITE, `user:${userId}`);
      expect(view?.cart).toEqual([]);
      expect(view?.counters.orders).toBe(1);
    }
  });

  it("a rate-limited browser does not hold back the person's events another browser carries", async () => {
    const tight = envWithSites([
      {
        id: SITE,
        writeKey: WRITE_KEY,
        allowedOrigins: [ORIGIN],
        settings: { rateLimit: { anonymousPerSecond: 0.01, anonymousBurst: 1 } },
      },
    ]);
    const headers = { 'cf-connecting-ip': '203.0.113.41' };
    const userId = `u-${anonId()}`;
    const user = { userId, userIdSignature: await signed(userId) };
    const [a, b] = [anonId('a'), anonId('b')];
    expect((await collect([makeEvent(a)], { env: tight, headers })).status).toBe(200);
    // Browser a's bucket is spent: its first run (anonymous) is refused, and with it the
    // whole browser, including the run to the person that b's order comes after.
    const res = await within(
      collect(
        [
          makeEvent(a),
          makeEvent(a, 'cart.item.added', { ...user, properties: { productId: 'p1' } }),
          makeEvent(b, 'order.completed', { ...user, properties: { orderId: 'o1', total: 10 } }),
        ],
        { env: tight, headers },
      ),
      5_000,
    );
    if (res === 'timed out') expect.fail('the request waited for ever on the rate-limited browser');
    expect(res.status).toBe(207);
    const body = (await res.json()) as { accepted: number; rejected: { index: number }[] };
    expect(body.accepted).toBe(1);
    expect(body.rejected.map((r) => r.index).sort()).toEqual([0, 1]);
    expect((await viewProfile(tight, SITE, `user:${userId}`))?.counters.orders).toBe(1);
  });
});
