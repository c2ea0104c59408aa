import { env } from 'cloudflare:workers';
import { eventMessagesOf } from '@attune/shared-schema';
import { afterEach, describe, expect, it } from 'vitest';
import { viewProfile } from '../profile/client.ts';
import {
  ADMIN_HEADERS,
  anonId,
  call,
  collect,
  makeEvent,
  people,
  recordQueue,
  SERVER_KEY,
  SITE,
  segment,
  signed,
} from './test-support.ts';

let queue = recordQueue();
afterEach(() => {
  queue.restore();
  queue = recordQueue();
});

const events = () => eventMessagesOf(queue.messages);
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
const consent = { categoryPreferences: { Analytics: true, Functional: true, Advertising: false } };

/** A batch as @segment/analytics-node sends it (messageId, _metadata, library context, writeKey in the body). */
function analyticsNodeBatch(userId: string) {
  return {
    batch: [
      {
        type: 'identify',
        userId,
        anonymousId: `browser-${userId}`,
        traits: { plan: 'pro', logins: 5 },
        context: { library: { name: '@segment/analytics-node', version: '2.1.3' }, consent },
        messageId: `node-next-1732000000000-${userId}-1`,
        timestamp: ago(3000),
        integrations: {},
        _metadata: { jsRuntime: 'node' },
      },
      {
        type: 'track',
        event: 'Product Viewed',
        userId,
        properties: {
          product_id: '507f1f77bcf86cd799439011',
          sku: 'G-32',
          category: 'Games',
          name: 'Monopoly: 3rd Edition',
          price: 18.99,
          currency: 'USD',
        },
        context: { library: { name: '@segment/analytics-node', version: '2.1.3' }, consent },
        messageId: `node-next-1732000000000-${userId}-2`,
        timestamp: ago(2000),
      },
      {
        type: 'track',
        event: 'Order Completed',
        userId,
        properties: {
          order_id: '50314b8e9bcf000000000000',
          total: 27.5,
          revenue: 25,
          currency: 'USD',
          products: [
            {
              product_id: '507f1f77bcf86cd799439011',
              sku: 'G-32',
              name: 'Monopoly: 3rd Edition',
              price: 18.99,
              quantity: 1,
              category: 'Games',
            },
          ],
        },
        context: { library: { name: '@segment/analytics-node', version: '2.1.3' }, consent },
        messageId: `node-next-1732000000000-${userId}-3`,
        timestamp: ago(1000),
      },
      {
        type: 'page',
        name: 'Home',
        userId,
        properties: { title: 'Welcome | Initech', url: 'https://shop.example/', path: '/' },
        context: { consent },
        messageId: `node-next-1732000000000-${userId}-4`,
        timestamp: ago(500),
      },
    ],
    writeKey: SERVER_KEY,
    sentAt: new Date().toISOString(),
  };
}

describe('Segment HTTP Tracking API', () => {
  it('maps an analytics-node batch onto canonical events, trusted under the server key', async () => {
    const userId = `u-${anonId()}`;
    const res = await segment('/v1/batch', analyticsNodeBatch(userId));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ success: true, accepted: 4, rejected: [] });
    const sent = events();
    expect(sent.map((m) => m.event.name)).toEqual([
      'user.identified',
      'product.viewed',
      'order.completed',
      'page.viewed',
    ]);
    expect(sent.every((m) => m.personId === `user:${userId}`)).toBe(true);
    // Segment's Advertising=false means no marketing; Functional counts as personalization.
    expect(sent[0]?.purposes).toEqual(['analytics', 'personalization']);
    const order = sent[2]?.event;
    expect(order?.properties).toMatchObject({
      orderId: '50314b8e9bcf000000000000',
      total: 27.5,
      products: [{ productId: '507f1f77bcf86cd799439011' }],
    });
    expect(sent[3]?.event.properties).toMatchObject({ title: 'Welcome | Initech' });
    const view = await viewProfile(env, SITE, `user:${userId}`);
    expect(view?.traits).toEqual({ plan: 'pro', logins: 5 });
    expect(view?.counters.orders).toBe(1);
    expect(view?.purchased).toEqual(['507f1f77bcf86cd799439011']);
    expect(view?.anonymousIds).toEqual([`browser-${userId}`]);
  });

  it('a retried batch (same messageIds) is deduplicated', async () => {
    const userId = `u-${anonId()}`;
    const body = analyticsNodeBatch(userId);
    await segment('/v1/batch', body);
    const retry = await segment('/v1/batch', body);
    expect(await retry.json()).toMatchObject({ accepted: 0, duplicates: 4 });
  });

  it('single calls: /v1/track, /v1/page, /v1/identify without a type field, messageId or timestamp', async () => {
    const userId = `u-${anonId()}`;
    const c = { consent };
    expect((await segment('/v1/identify', { userId, traits: { name: 'Ada' }, context: c })).status).toBe(200);
    expect(
      (
        await segment('/v1/track', {
          userId,
          event: 'Product Added',
          properties: { product_id: 'p9', category: 'Games' },
          context: c,
        })
      ).status,
    ).toBe(200);
    expect((await segment('/v1/page', { userId, name: 'Pricing', context: c })).status).toBe(200);
    expect(events().map((m) => m.event.name)).toEqual(['user.identified', 'cart.item.added', 'page.viewed']);
    const view = await viewProfile(env, SITE, `user:${userId}`);
    expect(view?.cart).toEqual(['p9']);
  });

  it('401 without or with a wrong server key (the public write key is not enough)', async () => {
    expect(
      (await call(JSON.stringify({ userId: 'x', event: 'A B' }), { path: '/v1/track', origin: null })).status,
    ).toBe(401);
    expect((await segment('/v1/track', { userId: 'x', event: 'A B' }, 'pk_demo_attune')).status).toBe(401);
  });

  it('reports unsupported calls and bad messages by index', async () => {
    const userId = `u-${anonId()}`;
    const res = await segment('/v1/batch', {
      batch: [
        { type: 'track', userId, event: 'Signed In', messageId: 'm1', context: { consent } },
        { type: 'alias', userId, previousId: 'old', messageId: 'm2' },
        'nonsense',
      ],
    });
    expect(res.status).toBe(207);
    const body = (await res.json()) as { rejected: { index: number; errors: { message: string }[] }[] };
    expect(body.rejected.map((r) => r.index)).toEqual([1, 2]);
    expect(body.rejected[0]?.errors[0]?.message).toMatch(/alias/);
  });

  it('without consent in the message, the consent the person recorded decides', async () => {
    const a = anonId();
    const userId = `u-${anonId()}`;
    // Nothing recorded yet: a server event for this person reaches no sink.
    const before = await segment('/v1/track', {
      userId,
      event: 'Order Completed',
      properties: { order_id: 'o1', total: 5 },
    });
    expect(await before.json()).toMatchObject({ accepted: 0, dropped: 1 });
    // … and stores nothing about them at the edge either.
    expect((await people(`user:${userId}`, 'GET', ADMIN_HEADERS, '&scope=edge')).status).toBe(404);
    // The person grants analytics only in the browser (signed in).
    await collect([
      makeEvent(a, 'consent.updated', {
        userId,
        userIdSignature: await signed(userId),
        properties: {
          categories: { analytics: true, personalization: false, marketing: false },
          policyVersion: '1',
        },
        consent: null,
      }),
    ]);
    queue.messages.length = 0;
    const after = await segment('/v1/track', {
      userId,
      event: 'Order Completed',
      properties: { order_id: 'o2', total: 5 },
    });
    expect(await after.json()).toMatchObject({ accepted: 1 });
    expect(events().map((m) => m.purposes)).toEqual([['analytics']]);
  });
});
