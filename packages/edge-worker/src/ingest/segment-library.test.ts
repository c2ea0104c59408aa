/**
 * The real `@segment/analytics-node` against the Segment HTTP Tracking API, inside workerd:
 * the library's HTTP client hands each request it would send to api.segment.io to the
 * Worker's fetch handler in this isolate, so what is tested is what a Segment customer's
 * server sends unchanged — its batching (`flushAt`), `closeAndFlush()`, retries and the
 * errors it reports — and what Attune makes of it.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { eventMessagesOf, LIMITS } from '@attune/shared-schema';
import {
  Analytics,
  type AnalyticsSettings,
  type HTTPClientRequest,
  type HTTPResponse,
} from '@segment/analytics-node';
import { describe, expect, it } from 'vitest';
import worker from '../index.ts';
import type { ProfileView } from '../profile/types.ts';
import { SEGMENT_BATCH_MAX_MESSAGES } from './segment.ts';
import { ADMIN_HEADERS, anonId, people, SERVER_KEY, useRecordedQueue, WRITE_KEY } from './test-support.ts';

const queue = useRecordedQueue();

const events = () => eventMessagesOf(queue.messages);

/** Segment's consent shape, as a customer's consent manager fills it on every call. */
const context = {
  consent: { categoryPreferences: { Analytics: true, Functional: true, Advertising: false } },
};

/** One request the library made, and what the Worker answered. */
interface Exchange {
  url: string;
  headers: Record<string, string>;
  body: { batch: Record<string, unknown>[]; writeKey?: string; sentAt?: string };
  status: number;
  answer: Record<string, unknown>;
}

/** What the library emitted on 'error' (code and reason), for the test to read. */
interface LibraryError {
  code: string;
  reason: string;
}

/**
 * Stands in for the network between the customer's server and the Worker: `before` may
 * answer instead of the Worker (an outage in front of it); `after` may replace the Worker's
 * answer (a response lost on its way back, after the Worker handled the request).
 */
interface Network {
  before?: (attempt: number) => HTTPResponse | undefined;
  after?: (attempt: number, response: Response) => HTTPResponse | Promise<never> | undefined;
}

/** An analytics-node client whose requests go to the Worker in this isolate. */
function segmentClient(settings: Partial<AnalyticsSettings> = {}, network: Network = {}) {
  const exchanges: Exchange[] = [];
  const errors: LibraryError[] = [];
  let attempt = 0;
  const analytics = new Analytics({
    writeKey: SERVER_KEY,
    host: 'https://attune.test',
    // A test waits for closeAndFlush(), not for the 10 s timer.
    flushInterval: 60_000,
    ...settings,
    httpClient: {
      async makeRequest(request: HTTPClientRequest): Promise<HTTPResponse> {
        attempt++;
        const stand = network.before?.(attempt);
        if (stand) return stand;
        // Kept in the order sent (a later batch may be answered first).
        const exchange: Exchange = {
          url: request.url,
          headers: request.headers,
          body: JSON.parse(request.body) as Exchange['body'],
          status: 0,
          answer: {},
        };
        exchanges.push(exchange);
        const sent = attempt;
        const ctx = createExecutionContext();
        const response = await worker.fetch(
          new Request(request.url, { method: request.method, headers: request.headers, body: request.body }),
          env,
          ctx,
        );
        await waitOnExecutionContext(ctx);
        exchange.status = response.status;
        exchange.answer = (await response.clone().json()) as Record<string, unknown>;
        return (await network.after?.(sent, response)) ?? response;
      },
    },
  });
  analytics.on('error', (error) => {
    const reason = error.reason;
    errors.push({ code: error.code, reason: reason instanceof Error ? reason.message : String(reason) });
  });
  return { analytics, exchanges, errors, attempts: () => attempt };
}

/** What the edge holds about `user:<userId>`, through the admin access route. */
async function heldAbout(userId: string): Promise<{ profile?: ProfileView }> {
  const res = await people(`user:${userId}`, 'GET', ADMIN_HEADERS, '&scope=edge');
  expect(res.status).toBe(200);
  return (await res.json()) as { profile?: ProfileView };
}

const failed = (status: number): HTTPResponse => ({ status, statusText: 'Service Unavailable' });

describe('@segment/analytics-node, unchanged, against the Worker', () => {
  it('identify, track, page and screen arrive as canonical events of the user, in flushAt batches, with no error', async () => {
    const userId = `u-${anonId()}`;
    const { analytics, exchanges, errors } = segmentClient({ flushAt: 3 });
    analytics.identify({ userId, traits: { plan: 'pro', logins: 5 }, context });
    analytics.track({
      userId,
      event: 'Product Viewed',
      properties: { product_id: 'p-42', category: 'Games', price: 18.99 },
      context,
    });
    analytics.track({
      userId,
      event: 'Order Completed',
      properties: {
        order_id: 'o-1001',
        revenue: 25,
        currency: 'usd',
        products: [{ product_id: 'p-42', price: 18.99, quantity: 1, category: 'Games' }],
      },
      context,
    });
    analytics.page({ userId, category: 'Docs', name: 'Pricing', properties: { path: '/pricing' }, context });
    analytics.screen({ userId, name: 'Home', context });
    await analytics.closeAndFlush();

    expect(errors).toEqual([]);
    // flushAt: the first three went as soon as there were three; closeAndFlush sent the rest.
    expect(exchanges.map((x) => x.body.batch.length)).toEqual([3, 2]);
    expect(exchanges.every((x) => x.url === 'https://attune.test/v1/batch' && x.status === 200)).toBe(true);
    // analytics-node 2.x sends the write key in the body only (no Basic auth).
    expect(exchanges[0]?.headers).not.toHaveProperty('Authorization');
    expect(exchanges[0]?.body.writeKey).toBe(SERVER_KEY);
    expect(exchanges.map((x) => x.answer)).toMatchObject([
      { success: true, accepted: 3, rejected: [] },
      { success: true, accepted: 2, rejected: [] },
    ]);

    const sent = events();
    expect(sent.map((m) => m.event.name)).toEqual([
      'user.identified',
      'product.viewed',
      'order.completed',
      'page.viewed',
      'page.viewed',
    ]);
    // The user id is trusted under the server key: every event is the signed-in person's.
    expect(sent.every((m) => m.personId === `user:${userId}` && m.event.userId === userId)).toBe(true);
    expect(sent.every((m) => m.event.context?.library?.name === '@segment/analytics-node')).toBe(true);
    // Advertising=false: no marketing; Functional counts as personalization.
    expect(sent[0]?.purposes).toEqual(['analytics', 'personalization']);
    expect(sent[2]?.event.properties).toMatchObject({
      orderId: 'o-1001',
      total: 25,
      currency: 'USD',
      products: [{ productId: 'p-42' }],
    });
    expect(sent[3]?.event.properties).toMatchObject({ title: 'Pricing', path: '/pricing', category: 'Docs' });
    expect(sent[4]?.event.properties).toMatchObject({ title: 'Home' });

    const { profile } = await heldAbout(userId);
    expect(profile?.traits).toEqual({ plan: 'pro', logins: 5 });
    expect(profile?.counters.orders).toBe(1);
    expect(profile?.purchased).toEqual(['p-42']);
    expect(profile?.recentActions.map((a) => a.name)).toContain('product.viewed');
  });

  it('group and alias, which Attune refuses, are named in a 200: the library reports no error, sends the batch once, and its other messages arrive', async () => {
    const userId = `u-${anonId()}`;
    const { analytics, exchanges, errors, attempts } = segmentClient();
    analytics.track({ userId, event: 'Signed In', context });
    analytics.group({ userId, groupId: 'initech', traits: { name: 'Initech' }, context });
    analytics.alias({ userId, previousId: 'legacy-42', context });
    analytics.identify({ userId, traits: { plan: 'enterprise' }, context });
    await analytics.closeAndFlush();

    expect(errors).toEqual([]);
    expect(attempts()).toBe(1);
    expect(exchanges[0]?.status).toBe(200);
    const answer = exchanges[0]?.answer as {
      accepted: number;
      rejected: { index: number; errors: { message: string }[] }[];
    };
    expect(answer.accepted).toBe(2);
    expect(answer.rejected.map((r) => r.index)).toEqual([1, 2]);
    expect(answer.rejected[0]?.errors[0]?.message).toMatch(/"group" calls are not supported/);
    expect(answer.rejected[1]?.errors[0]?.message).toMatch(/"alias" calls are not supported/);
    expect(events().map((m) => m.event.name)).toEqual(['user.signed_in', 'user.identified']);
    expect((await heldAbout(userId)).profile?.traits).toEqual({ plan: 'enterprise' });
  });

  it('a batch of refused calls alone is a 400: the library reports one delivery failure and does not resend it', async () => {
    const userId = `u-${anonId()}`;
    const { analytics, exchanges, errors, attempts } = segmentClient();
    analytics.group({ userId, groupId: 'initech', context });
    await analytics.closeAndFlush();

    expect(attempts()).toBe(1);
    expect(exchanges[0]?.status).toBe(400);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'delivery_failure', reason: expect.stringMatching(/^\[400\]/) });
    expect(events()).toEqual([]);
  });

  it('a response lost after the Worker took the batch: the library resends it and the order is counted once', async () => {
    const userId = `u-${anonId()}`;
    const { analytics, exchanges, errors, attempts } = segmentClient(
      {},
      { after: (attempt) => (attempt === 1 ? Promise.reject(new Error('socket hang up')) : undefined) },
    );
    analytics.track({
      userId,
      event: 'Order Completed',
      properties: { order_id: 'o-7', total: 40, currency: 'EUR' },
      context,
    });
    await analytics.closeAndFlush();

    expect(errors).toEqual([]);
    expect(attempts()).toBe(2);
    expect(exchanges.map((x) => x.answer)).toMatchObject([
      { accepted: 1, duplicates: 0 },
      { accepted: 0, duplicates: 1 },
    ]);
    expect(events()).toHaveLength(1);
    expect((await heldAbout(userId)).profile?.counters.orders).toBe(1);
  });

  it('a 503 in front of the Worker is retried with backoff and the batch then arrives', async () => {
    const userId = `u-${anonId()}`;
    const { analytics, exchanges, errors, attempts } = segmentClient(
      {},
      { before: (attempt) => (attempt <= 2 ? failed(503) : undefined) },
    );
    analytics.identify({ userId, traits: { plan: 'team' }, context });
    await analytics.closeAndFlush();

    expect(errors).toEqual([]);
    expect(attempts()).toBe(3);
    expect(exchanges.map((x) => x.status)).toEqual([200]);
    expect((await heldAbout(userId)).profile?.traits).toEqual({ plan: 'team' });
  });

  it('flushAt: 600 (analytics-node sets no maximum) is taken whole, not a 413 the library resends and then drops', async () => {
    const userId = `u-${anonId()}`;
    const { analytics, exchanges, errors, attempts } = segmentClient({ flushAt: 600 });
    for (let i = 0; i < 600; i++)
      analytics.track({ userId, event: 'Product Viewed', properties: { product_id: `p-${i}` }, context });
    await analytics.closeAndFlush();

    expect(errors).toEqual([]);
    expect(attempts()).toBe(1);
    expect(exchanges[0]?.body.batch).toHaveLength(600);
    expect(exchanges[0]?.answer).toMatchObject({ success: true, accepted: 600 });
    expect((await heldAbout(userId)).profile?.counters['product.viewed']).toBe(600);
  });

  it('no count cap refuses a batch of analytics-node messages the body limit takes, however small they are', async () => {
    const { analytics, exchanges } = segmentClient();
    // The smallest message a customer can make the library send: what it adds itself, with
    // the shortest runtime tag it has (on Node it also adds nodeVersion).
    analytics.track({ anonymousId: 'a', event: 'x', messageId: 'm' });
    await analytics.closeAndFlush();
    const message = { ...exchanges[0]?.body.batch[0], _metadata: { jsRuntime: 'browser' } };
    // analytics-node cuts batches by flushAt alone: its byte count (encodeURI(json).split(/%..|i/))
    // counts the letter i, not bytes, so only the Worker's body limit bounds a batch.
    const bytes = new TextEncoder().encode(`${JSON.stringify(message)},`).byteLength;
    expect(Math.floor(LIMITS.maxBatchBytes / bytes)).toBeLessThanOrEqual(SEGMENT_BATCH_MAX_MESSAGES);
  });

  it('a wrong write key (the public browser key) is a 401 the library gives up on after its retries; nothing is stored', async () => {
    const userId = `u-${anonId()}`;
    const { analytics, exchanges, errors, attempts } = segmentClient({ writeKey: WRITE_KEY, maxRetries: 1 });
    analytics.track({ userId, event: 'Signed In', context });
    await analytics.closeAndFlush();

    // analytics-node 2.x takes any status but 400 and 2xx for a transient one: bounded by maxRetries.
    expect(attempts()).toBe(2);
    expect(exchanges.map((x) => x.status)).toEqual([401, 401]);
    expect(errors).toEqual([{ code: 'delivery_failure', reason: expect.stringMatching(/^\[401\]/) }]);
    expect(events()).toEqual([]);
  });
});
