/**
 * Orders the Directus order Flow could not deliver, against a real Directus and the Worker
 * under wrangler dev: the Flow POSTs each new order once, so an order created while the
 * Worker refused it (down, being deployed, answering 5xx or 429) was lost to the person's
 * profile; the five-minute scheduled run catches it up, once, and does not count again an
 * order the Flow did deliver (the same event id on both paths).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { orderEventId } from '../../src/orders/catch-up.ts';
import {
  consentedInBrowser,
  eventually,
  loggedOrder,
  ordersAtEdge,
  placeOrder,
  refusedFlowCalls,
  refuseFlows,
  scheduledRun,
  uniqueId,
} from './support.ts';

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
      await consentedInBrowser(browser);
      await refuseFlows(status);
      const { id: orderId } = await placeOrder(browser, 75);
      // The Flow ran and was refused.
      await eventually(async () => ((await refusedFlowCalls()).includes('/v1/collect') ? true : undefined));
      await refuseFlows(undefined);

      // The loss: the order is in Directus, the purchase nowhere at the edge.
      expect(await ordersAtEdge(browser)).toEqual({ orders: 0, revenue: 0 });

      await scheduledRun();
      expect(
        await eventually(async () =>
          (await ordersAtEdge(browser)).orders > 0 ? ordersAtEdge(browser) : undefined,
        ),
      ).toEqual({ orders: 1, revenue: 75 });
      // In the event log too (analytics was granted), once.
      await eventually(async () => ((await loggedOrder(orderId)).length > 0 ? true : undefined), 30_000);

      // A second run reads it again (the overlap) and counts nothing.
      await scheduledRun();
      expect(await ordersAtEdge(browser)).toEqual({ orders: 1, revenue: 75 });
      expect(await loggedOrder(orderId)).toHaveLength(1);
    },
  );

  it('an order the Flow delivered is not counted again by the scheduled run', async () => {
    const browser = uniqueId('buyer');
    await consentedInBrowser(browser);
    const { id: orderId, createdAt } = await placeOrder(browser, 30);
    expect(
      await eventually(
        async () => ((await ordersAtEdge(browser)).orders > 0 ? ordersAtEdge(browser) : undefined),
        30_000,
      ),
    ).toEqual({ orders: 1, revenue: 30 });

    await scheduledRun();
    await scheduledRun();
    expect(await ordersAtEdge(browser)).toEqual({ orders: 1, revenue: 30 });
    await eventually(async () => ((await loggedOrder(orderId)).length > 0 ? true : undefined), 30_000);
    // The Flow's event id is the one the catch-up makes for the order.
    expect((await loggedOrder(orderId)).map((e) => e.id)).toEqual([
      await orderEventId(Date.parse(createdAt), orderId),
    ]);
  });
});
