/**
 * Orders the Directus order Flow could not deliver, against a real Directus and the Worker
 * under wrangler dev: the Flow POSTs each new order once, so an order created while the
 * Worker refused it (down, being deployed, answering 5xx or 429) was lost to the person's
 * profile; the five-minute scheduled run catches it up, once, and does not count again an
 * order the Flow did deliver (the same event id on both paths).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { orderEventId } from '../../src/orders/catch-up.ts';
import { CACHE_CHECK_CRON } from '../../src/schedule/index.ts';
import { DIRECTUS_TEST } from './constants.mjs';
import {
  admin,
  eventually,
  recordConsent,
  refusedFlowCalls,
  refuseFlows,
  rows,
  uniqueId,
} from './support.ts';

const worker = DIRECTUS_TEST.workerUrl;

/** The browser's consent choice (analytics and personalization), sent as the tag sends it. */
async function consented(anonymousId: string): Promise<void> {
  expect((await recordConsent({ anonymousId }, { origin: 'http://localhost:3000' })).status).toBe(200);
}

/** A paid order created in Directus, as a shop's backend creates it (the Flow fires on it). */
async function placeOrder(anonymousId: string, total: number): Promise<{ id: string; createdAt: string }> {
  const id = uniqueId('order');
  const createdAt = new Date().toISOString();
  await admin('POST', '/items/orders', {
    id,
    site_id: 'demo',
    anonymous_id: anonymousId,
    total,
    currency: 'EUR',
    items: [{ productId: 'p-storm-shell-jacket', quantity: 1 }],
    status: 'paid',
    created_at: createdAt,
  });
  return { id, createdAt };
}

/** The person's orders and revenue, as the edge holds them (the Worker's access answer). */
async function atEdge(anonymousId: string): Promise<{ orders: number; revenue: number }> {
  const res = await fetch(
    `${worker}/v1/people/${encodeURIComponent(`anon:${anonymousId}`)}?scope=edge&site=demo`,
    { headers: { authorization: `Bearer ${DIRECTUS_TEST.adminToken}` } },
  );
  const held = (await res.json()) as { profile?: { counters: Record<string, number> } };
  return { orders: held.profile?.counters.orders ?? 0, revenue: held.profile?.counters.revenue ?? 0 };
}

/** Runs the Worker's five-minute scheduled handler, as its Cron Trigger does. */
async function scheduledRun(): Promise<void> {
  const res = await fetch(`${worker}/__scheduled?cron=${encodeURIComponent(CACHE_CHECK_CRON)}`);
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

/** The event log's order.completed rows of an order. */
const logged = async (orderId: string) =>
  (
    await rows<{ id: string; properties: { orderId: string } }>('events', {
      name: { _eq: 'order.completed' },
    })
  ).filter((e) => e.properties.orderId === orderId);

afterEach(async () => {
  await refuseFlows(undefined);
});

describe("the order Flow's lost orders", () => {
  it.each([
    [503, 'down or being deployed'],
    [429, 'overloaded'],
  ])(
    'an order whose Flow call the Worker refused (%i: %s) reaches the profile after the scheduled run, once',
    async (status) => {
      const browser = uniqueId('buyer');
      await consented(browser);
      await refuseFlows(status);
      const { id: orderId } = await placeOrder(browser, 75);
      // The Flow ran and was refused.
      await eventually(async () => ((await refusedFlowCalls()).includes('/v1/collect') ? true : undefined));
      await refuseFlows(undefined);

      // The loss: the order is in Directus, the purchase nowhere at the edge.
      expect(await atEdge(browser)).toEqual({ orders: 0, revenue: 0 });

      await scheduledRun();
      expect(
        await eventually(async () => ((await atEdge(browser)).orders > 0 ? atEdge(browser) : undefined)),
      ).toEqual({ orders: 1, revenue: 75 });
      // In the event log too (analytics was granted), once.
      await eventually(async () => ((await logged(orderId)).length > 0 ? true : undefined), 30_000);

      // A second run reads it again (the overlap) and counts nothing.
      await scheduledRun();
      expect(await atEdge(browser)).toEqual({ orders: 1, revenue: 75 });
      expect(await logged(orderId)).toHaveLength(1);
    },
  );

  it('an order the Flow delivered is not counted again by the scheduled run', async () => {
    const browser = uniqueId('buyer');
    await consented(browser);
    const { id: orderId, createdAt } = await placeOrder(browser, 30);
    expect(
      await eventually(
        async () => ((await atEdge(browser)).orders > 0 ? atEdge(browser) : undefined),
        30_000,
      ),
    ).toEqual({ orders: 1, revenue: 30 });

    await scheduledRun();
    await scheduledRun();
    expect(await atEdge(browser)).toEqual({ orders: 1, revenue: 30 });
    await eventually(async () => ((await logged(orderId)).length > 0 ? true : undefined), 30_000);
    // The Flow's event id is the one the catch-up makes for the order.
    expect((await logged(orderId)).map((e) => e.id)).toEqual([
      await orderEventId(Date.parse(createdAt), orderId),
    ]);
  });
});
