/**
 * The order catch-up in workerd, with the Worker's real ProfileDOs and pipeline and a
 * stand-in Directus holding `orders` rows: a paid order the Flow never delivered reaches the
 * person once, one it did deliver is not counted again, consent and erasure rule it as they
 * rule the Flow's, and a run reads from its watermark, not the whole day again. The same
 * against a real Directus and its Flow: test/directus/order-catch-up.test.ts.
 */
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { type DirectusFilter, directusClient } from '../directus/client.ts';
import {
  ADMIN_HEADERS,
  anonId,
  collect,
  consentFor,
  makeEvent,
  people,
  SERVER_KEY,
  SITE,
} from '../ingest/test-support.ts';
import { viewProfile } from '../profile/client.ts';
import { getSiteById, type Site } from '../sites/index.ts';
import {
  catchUpOrders,
  ORDERS_LOOK_BACK_MS,
  ORDERS_OVERLAP_MS,
  ORDERS_PAGE_SIZE,
  type OrderRow,
  type OrderTime,
  orderEvent,
  ordersWatermarkKey,
} from './catch-up.ts';

const MINUTE = 60_000;

/**
 * A stand-in Directus's `orders`, answering reads by site and by the bounds on one time
 * (`created_at` or `date_updated`, the field bounded above), and a lower bound on
 * `created_at` besides, as Directus does.
 */
function ordersDirectus(
  orders: OrderRow[],
  { failFromOffset = Number.POSITIVE_INFINITY, withoutDateUpdated = false } = {},
) {
  const reads: { by: OrderTime; from: string; to: string }[] = [];
  const directus = directusClient({
    url: 'http://directus.stand-in.test',
    token: 't',
    fetch: async (input) => {
      const url = new URL(String(input));
      if (url.pathname !== '/items/orders') return Response.json({ errors: [] }, { status: 404 });
      const filter = JSON.parse(url.searchParams.get('filter') ?? '{}') as { _and: DirectusFilter[] };
      const bounds = (field: OrderTime) =>
        filter._and.flatMap((part) => {
          const bound = part[field] as Record<string, string> | undefined;
          return bound === undefined ? [] : [bound];
        });
      const by: OrderTime = bounds('date_updated').length > 0 ? 'date_updated' : 'created_at';
      if (by === 'date_updated' && withoutDateUpdated)
        return Response.json(
          {
            errors: [
              {
                message: `You don't have permission to access field "date_updated" in collection "orders" or it does not exist.`,
                extensions: { code: 'FORBIDDEN' },
              },
            ],
          },
          { status: 403 },
        );
      const bound = (op: string): string => {
        const found = bounds(by).find((b) => b[op] !== undefined)?.[op];
        if (found === undefined) throw new Error(`the read has no ${by} ${op} bound`);
        return found;
      };
      const [from, to] = [bound('_gte'), bound('_lte')];
      const createdFrom = by === 'created_at' ? from : (bounds('created_at')[0]?._gte ?? '');
      reads.push({ by, from, to });
      const offset = Number(url.searchParams.get('offset') ?? 0);
      if (offset >= failFromOffset) return new Response('unavailable', { status: 503 });
      const limit = Number(url.searchParams.get('limit') ?? 100);
      const data = orders
        .filter((o) => o.site_id === SITE && typeof o[by] === 'string' && typeof o.created_at === 'string')
        .filter((o) => String(o[by]) >= from && String(o[by]) <= to && String(o.created_at) >= createdFrom)
        .sort((a, b) => String(a[by]).localeCompare(String(b[by])))
        .slice(offset, offset + limit);
      return Response.json({ data });
    },
  });
  return { directus, reads };
}

async function demo(): Promise<Site> {
  const site = await getSiteById(env, SITE);
  if (!site) throw new Error('the demo site is missing from wrangler.toml');
  return site;
}

/** A browser that chose these purposes in the banner. */
async function consented(anonymousId: string, ...purposes: string[]): Promise<void> {
  const choice = consentFor(...purposes);
  const res = await collect([
    makeEvent(anonymousId, 'consent.updated', { properties: { ...choice }, consent: choice }),
  ]);
  expect(res.status).toBe(200);
}

let orderCount = 0;
function paidOrder(fields: Partial<OrderRow>): OrderRow {
  orderCount++;
  return {
    id: `order-${Date.now().toString(36)}-${orderCount}`,
    site_id: SITE,
    user_id: null,
    anonymous_id: null,
    total: 40,
    currency: 'EUR',
    items: [{ productId: 'p-storm-shell-jacket', quantity: 1 }],
    status: 'paid',
    created_at: new Date(Date.now() - MINUTE).toISOString(),
    ...fields,
  };
}

/** What the Flow's POST would have done with `order`, as the site's server. */
async function sentByFlow(order: OrderRow): Promise<Response> {
  const event = await orderEvent(order);
  if (!event) throw new Error('not a purchase');
  return collect([event], { origin: null, headers: { authorization: `Basic ${btoa(`${SERVER_KEY}:`)}` } });
}

/** A run from scratch: neither time's watermark set. */
async function forgetWatermarks(): Promise<void> {
  await env.EDGE_CACHE.delete(ordersWatermarkKey(SITE, 'created_at'));
  await env.EDGE_CACHE.delete(ordersWatermarkKey(SITE, 'date_updated'));
}

const ordersOf = async (personKey: `anon:${string}` | `user:${string}`) =>
  (await viewProfile(env, SITE, personKey))?.counters.orders ?? 0;

describe('the order catch-up', () => {
  it('delivers a paid order the Flow lost, once; one the Flow delivered is not counted again', async () => {
    await forgetWatermarks();
    const browser = anonId('buyer');
    await consented(browser, 'analytics', 'personalization');
    const delivered = paidOrder({
      anonymous_id: browser,
      created_at: new Date(Date.now() - 30 * MINUTE).toISOString(),
    });
    const lost = paidOrder({ anonymous_id: browser, total: 60 });
    expect(await (await sentByFlow(delivered)).json()).toMatchObject({ accepted: 1 });
    expect(await ordersOf(`anon:${browser}`)).toBe(1);

    const { directus } = ordersDirectus([delivered, lost]);
    const now = Date.now();
    const first = await catchUpOrders(env, await demo(), { directus, now, unsited: false });
    expect(first).toMatchObject({ read: 2, delivered: 1, duplicates: 1, dropped: 0, rejected: 0 });
    const profile = await viewProfile(env, SITE, `anon:${browser}`);
    expect(profile?.counters.orders).toBe(2);
    expect(profile?.counters.revenue).toBe(100);

    // The next run reads the overlap again: nothing is counted twice.
    const again = await catchUpOrders(env, await demo(), { directus, now: now + 5 * MINUTE, unsited: false });
    expect(again.delivered).toBe(0);
    expect(await ordersOf(`anon:${browser}`)).toBe(2);
    // And the Flow's own delivery arriving late (a retried request) is a duplicate too.
    expect(await (await sentByFlow(lost)).json()).toMatchObject({ accepted: 0, duplicates: 1 });
  });

  it("goes to a signed-in buyer's person, by the record of their consent; not to one who never chose", async () => {
    await forgetWatermarks();
    const userId = `u-${anonId('shopper')}`;
    const browser = anonId('browser');
    // Signed in by the shop's backend, with consent given in the browser.
    const choice = consentFor('analytics', 'personalization');
    await collect(
      [makeEvent(browser, 'consent.updated', { userId, properties: { ...choice }, consent: choice })],
      { origin: null, headers: { authorization: `Basic ${btoa(`${SERVER_KEY}:`)}` } },
    );
    const nobody = anonId('never-chose');
    const onlyAnalytics = anonId('analytics-only');
    await consented(onlyAnalytics, 'analytics');
    const { directus } = ordersDirectus([
      paidOrder({ user_id: userId }),
      paidOrder({ anonymous_id: nobody }),
      paidOrder({ anonymous_id: onlyAnalytics }),
      // Neither the Flow nor the catch-up sends these.
      paidOrder({ anonymous_id: browser, status: 'pending' }),
      paidOrder({ anonymous_id: browser, site_id: 'another-shop' }),
    ]);
    const done = await catchUpOrders(env, await demo(), { directus, now: Date.now(), unsited: false });
    expect(done).toMatchObject({ read: 3, delivered: 2, dropped: 1 });
    expect(await ordersOf(`user:${userId}`)).toBe(1);
    // No made-up browser for the signed-in buyer's order.
    expect((await viewProfile(env, SITE, `user:${userId}`))?.anonymousIds).toEqual([browser]);
    expect(await viewProfile(env, SITE, `anon:${nobody}`)).toBeNull();
    // Analytics alone: the event log may have it, the profile may not.
    expect(await ordersOf(`anon:${onlyAnalytics}`)).toBe(0);
  });

  it('does not count twice an order created pending and paid later, which the backend sends itself', async () => {
    await forgetWatermarks();
    const browser = anonId('paid-later');
    await consented(browser, 'analytics', 'personalization');
    // Created pending: the Flow sends nothing (services/directus README: "one created pending
    // and paid later ... does not reach the edge (send those from your backend)").
    const order = paidOrder({ anonymous_id: browser, status: 'pending' });
    const { directus } = ordersDirectus([order]);
    const now = Date.now();
    await catchUpOrders(env, await demo(), { directus, now, unsited: false });
    // Paid a minute later; the backend sends the purchase, as that README says to.
    order.status = 'paid';
    const own = makeEvent(browser, 'order.completed', {
      properties: { orderId: order.id, total: 40, currency: 'EUR' },
    });
    expect(await (await collect([own])).json()).toMatchObject({ accepted: 1 });
    expect(await ordersOf(`anon:${browser}`)).toBe(1);
    await catchUpOrders(env, await demo(), { directus, now: now + 5 * MINUTE, unsited: false });
    expect(await ordersOf(`anon:${browser}`)).toBe(1);
  });

  it('does not bring back an erased person with their order', async () => {
    await forgetWatermarks();
    const browser = anonId('erased');
    await consented(browser, 'analytics', 'personalization');
    expect((await people(`anon:${browser}`, 'DELETE', ADMIN_HEADERS)).status).toBeLessThan(300);
    const { directus } = ordersDirectus([paidOrder({ anonymous_id: browser })]);
    const done = await catchUpOrders(env, await demo(), { directus, now: Date.now(), unsited: false });
    expect(done).toMatchObject({ read: 1, delivered: 0, dropped: 1 });
    expect(await viewProfile(env, SITE, `anon:${browser}`)).toBeNull();
  });

  it('delivers an order placed days ago whose paid-order Flow call was lost, once, by when it was marked paid', async () => {
    await forgetWatermarks();
    const browser = anonId('paid-by-transfer');
    await consented(browser, 'analytics', 'personalization');
    const now = Date.now();
    const placed = (days: number) => new Date(now - days * 24 * 60 * MINUTE).toISOString();
    const paidNow = new Date(now - MINUTE).toISOString();
    const { directus, reads } = ordersDirectus([
      paidOrder({ anonymous_id: browser, total: 48, created_at: placed(3), date_updated: paidNow }),
      // Placed longer ago than the edge accepts an event's time: the Flow's is refused too.
      paidOrder({ anonymous_id: browser, total: 500, created_at: placed(31), date_updated: paidNow }),
      // A cancellation is an update too: not a purchase.
      paidOrder({ anonymous_id: browser, status: 'cancelled', created_at: placed(2), date_updated: paidNow }),
    ]);
    const first = await catchUpOrders(env, await demo(), { directus, now, unsited: false });
    expect(first).toMatchObject({ read: 1, delivered: 1, duplicates: 0, rejected: 0 });
    expect((await viewProfile(env, SITE, `anon:${browser}`))?.counters).toMatchObject({
      orders: 1,
      revenue: 48,
    });
    expect(reads.find((read) => read.by === 'date_updated')?.from).toBe(
      new Date(now - ORDERS_LOOK_BACK_MS).toISOString(),
    );
    // The next run reads the overlap again, by either time: counted once.
    const again = await catchUpOrders(env, await demo(), { directus, now: now + 5 * MINUTE, unsited: false });
    expect(again.delivered).toBe(0);
    expect(await ordersOf(`anon:${browser}`)).toBe(1);
    expect(await env.EDGE_CACHE.get(ordersWatermarkKey(SITE, 'date_updated'))).toBe(
      new Date(now + 5 * MINUTE).toISOString(),
    );
  });

  it('says to bootstrap Directus again when its orders have no date_updated, after catching up by creation', async () => {
    await forgetWatermarks();
    const browser = anonId('older-instance');
    await consented(browser, 'analytics', 'personalization');
    // An instance bootstrapped before the field: Directus refuses a filter on it.
    const { directus: older } = ordersDirectus([paidOrder({ anonymous_id: browser })], {
      withoutDateUpdated: true,
    });
    await expect(
      catchUpOrders(env, await demo(), { directus: older, now: Date.now(), unsited: false }),
    ).rejects.toThrow(/orders\.date_updated is missing in Directus: bootstrap it again/);
    expect(await ordersOf(`anon:${browser}`)).toBe(1);
  });

  it('reads a day back at first, then from its watermark less the overlap', async () => {
    const key = ordersWatermarkKey(SITE);
    await forgetWatermarks();
    const now = Date.parse('2026-11-20T12:00:00.000Z');
    const order = paidOrder({
      anonymous_id: anonId('no-choice'),
      created_at: new Date(now - 60 * MINUTE).toISOString(),
    });
    const { directus, reads } = ordersDirectus([order]);
    await catchUpOrders(env, await demo(), { directus, now, unsited: false });
    const later = now + 5 * MINUTE;
    await catchUpOrders(env, await demo(), { directus, now: later, unsited: false });
    const created = () => reads.filter((read) => read.by === 'created_at');
    expect(created()).toEqual([
      {
        by: 'created_at',
        from: new Date(now - ORDERS_LOOK_BACK_MS).toISOString(),
        to: new Date(now).toISOString(),
      },
      {
        by: 'created_at',
        from: new Date(now - ORDERS_OVERLAP_MS).toISOString(),
        to: new Date(later).toISOString(),
      },
    ]);
    // A Worker down for days starts a day back again, not from its old watermark.
    const muchLater = later + 3 * ORDERS_LOOK_BACK_MS;
    await catchUpOrders(env, await demo(), { directus, now: muchLater, unsited: false });
    expect(created()[2]?.from).toBe(new Date(muchLater - ORDERS_LOOK_BACK_MS).toISOString());
    // The runs after the first read no order: they left its watermark (KV's writes are counted).
    expect(await env.EDGE_CACHE.get(key)).toBe(new Date(now).toISOString());
  });

  it('keeps the pages delivered whole when a later page fails, and goes on from there', async () => {
    const key = ordersWatermarkKey(SITE);
    await forgetWatermarks();
    const now = Date.now();
    const orders = Array.from({ length: ORDERS_PAGE_SIZE + 5 }, (_, i) =>
      paidOrder({
        anonymous_id: anonId('no-choice'),
        created_at: new Date(now - (60 - i) * MINUTE).toISOString(),
      }),
    );
    const { directus } = ordersDirectus(orders, { failFromOffset: ORDERS_PAGE_SIZE });
    await expect(catchUpOrders(env, await demo(), { directus, now, unsited: false })).rejects.toThrow(/503/);
    const lastOfFirstPage = Date.parse(String(orders[ORDERS_PAGE_SIZE - 1]?.created_at));
    expect(await env.EDGE_CACHE.get(key)).toBe(new Date(lastOfFirstPage + ORDERS_OVERLAP_MS).toISOString());
  });

  it('leaves the watermark where it was when Directus fails, so the next run reads those orders again', async () => {
    const key = ordersWatermarkKey(SITE);
    await env.EDGE_CACHE.put(key, '2026-11-20T12:00:00.000Z');
    const down = directusClient({
      url: 'http://directus.stand-in.test',
      token: 't',
      fetch: async () => new Response('unavailable', { status: 503 }),
    });
    await expect(
      catchUpOrders(env, await demo(), {
        directus: down,
        now: Date.parse('2026-11-20T12:05:00.000Z'),
        unsited: false,
      }),
    ).rejects.toThrow();
    expect(await env.EDGE_CACHE.get(key)).toBe('2026-11-20T12:00:00.000Z');
  });
});
