/**
 * Orders created pending and paid later (bank transfer, invoice, a payment webhook),
 * against a real Directus, its real Flows and the Worker under wrangler dev: the create
 * sends nothing for a pending order. The paid-order Flow sends it when an update marks it
 * paid, as the very event of the create path (same id), so it is counted once whoever sends
 * it; any other update sends nothing. When that call is lost, the Worker's catch-up finds
 * the order by its `date_updated`, however long before it was placed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { orderEventId } from '../../src/orders/catch-up.ts';
import { DIRECTUS_TEST } from './constants.mjs';
import {
  admin,
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

/** Long before the update: further back than the Worker's catch-up reads. */
const AN_HOUR_AGO = () => new Date(Date.now() - 60 * 60_000).toISOString();
/** Placed pending two days before it is paid: further back than the catch-up's day of created orders. */
const TWO_DAYS_AGO = () => new Date(Date.now() - 2 * 24 * 60 * 60_000).toISOString();

/** An order placed pending an hour ago, as a shop awaiting a bank transfer holds it. */
const pendingOrder = (anonymousId: string, total: number, fields: { site_id?: string } = {}) =>
  placeOrder(anonymousId, total, { status: 'pending', created_at: AN_HOUR_AGO(), ...fields });

/** Waits until the edge counts `orders` orders of the browser, and answers what it holds. */
const counted = (anonymousId: string, orders: number) =>
  eventually(async () => {
    const held = await ordersAtEdge(anonymousId);
    return held.orders >= orders ? held : undefined;
  }, 30_000);

/** The Flows run after the write's answer, side by side: time for one that should send nothing to have sent. */
const flowsSettle = () => new Promise((resolve) => setTimeout(resolve, 3_000));

afterEach(async () => {
  await refuseFlows(undefined);
});

describe('an order paid after it was placed', () => {
  it('reaches the profile when an update marks it paid, once, and a later update sends nothing', async () => {
    const browser = uniqueId('buyer');
    await consentedInBrowser(browser);
    const { id: orderId, createdAt } = await pendingOrder(browser, 64);
    await scheduledRun();
    await flowsSettle();
    // Pending: not a purchase, neither from the Flow nor the catch-up.
    expect(await ordersAtEdge(browser)).toEqual({ orders: 0, revenue: 0 });

    // The bank transfer arrives: the shop marks the order paid.
    await admin('PATCH', `/items/orders/${orderId}`, { status: 'paid' });
    expect(await counted(browser, 1)).toEqual({ orders: 1, revenue: 64 });
    await eventually(async () => ((await loggedOrder(orderId)).length > 0 ? true : undefined), 30_000);
    // The create path's event: the id the catch-up and the Flow on create give the order.
    expect((await loggedOrder(orderId)).map((e) => e.id)).toEqual([
      await orderEventId(Date.parse(createdAt), orderId),
    ]);

    // Shipped (sent again: the same event, not counted again), a currency edit, the
    // catch-up: the purchase stays one.
    await admin('PATCH', `/items/orders/${orderId}`, { status: 'completed' });
    await admin('PATCH', `/items/orders/${orderId}`, { currency: 'EUR' });
    await scheduledRun();
    await flowsSettle();
    expect(await ordersAtEdge(browser)).toEqual({ orders: 1, revenue: 64 });
    expect(await loggedOrder(orderId)).toHaveLength(1);

    // The runs are logged without their data: neither the buyer's browser id nor the
    // server key (base64 in the Authorization header) is kept in revisions or activity.
    const stored = JSON.stringify([
      await admin<unknown[]>('GET', '/revisions?limit=-1'),
      await admin<unknown[]>('GET', '/activity?limit=-1'),
    ]);
    expect(stored).not.toContain(browser);
    expect(stored).not.toContain(btoa(`${DIRECTUS_TEST.serverKey}:`));
  });

  it('sends nothing for a cancellation or an erasure clearing the buyer', async () => {
    const browser = uniqueId('buyer');
    await consentedInBrowser(browser);
    const { id: cancelled } = await pendingOrder(browser, 20);
    const { id: erased } = await pendingOrder(browser, 30);
    await admin('PATCH', `/items/orders/${cancelled}`, { status: 'cancelled' });
    await admin('PATCH', `/items/orders/${erased}`, { user_id: null, anonymous_id: null });
    // A paid one after them shows the Flows ran.
    const { id: paid } = await pendingOrder(browser, 5);
    await admin('PATCH', `/items/orders/${paid}`, { status: 'paid' });
    expect(await counted(browser, 1)).toEqual({ orders: 1, revenue: 5 });
    await flowsSettle();
    expect(await ordersAtEdge(browser)).toEqual({ orders: 1, revenue: 5 });
    expect(await loggedOrder(cancelled)).toEqual([]);
    expect(await loggedOrder(erased)).toEqual([]);
  });

  it("sends every order one update marks paid, this site's only, each once", async () => {
    const browser = uniqueId('buyer');
    const other = uniqueId('buyer');
    await consentedInBrowser(browser);
    await consentedInBrowser(other);
    const first = await pendingOrder(browser, 10);
    const second = await pendingOrder(browser, 15);
    const third = await pendingOrder(other, 7);
    // Another site's order: this Flow holds demo's keys, so it is not sent as demo's.
    const elsewhere = await pendingOrder(browser, 1000, { site_id: 'another-shop' });
    await admin('PATCH', '/items/orders', {
      keys: [first.id, second.id, third.id, elsewhere.id],
      data: { status: 'Paid' },
    });
    expect(await counted(browser, 2)).toEqual({ orders: 2, revenue: 25 });
    expect(await counted(other, 1)).toEqual({ orders: 1, revenue: 7 });
    await flowsSettle();
    expect(await ordersAtEdge(browser)).toEqual({ orders: 2, revenue: 25 });
    expect(await loggedOrder(elsewhere.id)).toEqual([]);
  });

  it("reaches the profile after the scheduled run when the paid-order Flow's call was lost, days after it was placed", async () => {
    const browser = uniqueId('buyer');
    await consentedInBrowser(browser);
    const { id: orderId, createdAt } = await placeOrder(browser, 48, {
      status: 'pending',
      created_at: TWO_DAYS_AGO(),
    });
    await scheduledRun();

    // The transfer arrives while the Worker is being deployed: the Flow's call is refused.
    await refuseFlows(503);
    await admin('PATCH', `/items/orders/${orderId}`, { status: 'paid' });
    await eventually(async () => ((await refusedFlowCalls()).includes('/v1/collect') ? true : undefined));
    await refuseFlows(undefined);
    expect(await ordersAtEdge(browser)).toEqual({ orders: 0, revenue: 0 });

    await scheduledRun();
    expect(await counted(browser, 1)).toEqual({ orders: 1, revenue: 48 });
    await eventually(async () => ((await loggedOrder(orderId)).length > 0 ? true : undefined), 30_000);
    // The Flows' event, with their id: a late Flow call or the next run counts nothing more.
    expect((await loggedOrder(orderId)).map((e) => e.id)).toEqual([
      await orderEventId(Date.parse(createdAt), orderId),
    ]);
    await scheduledRun();
    expect(await ordersAtEdge(browser)).toEqual({ orders: 1, revenue: 48 });
    expect(await loggedOrder(orderId)).toHaveLength(1);
  });
});

describe('an update marking more orders paid than the Flow sends', () => {
  it('has the others sent by the scheduled run, each once', async () => {
    const browser = uniqueId('buyer');
    await consentedInBrowser(browser);
    const placed = TWO_DAYS_AGO();
    const ids = Array.from({ length: 101 }, () => uniqueId('order'));
    await admin(
      'POST',
      '/items/orders',
      ids.map((id) => ({
        id,
        site_id: 'demo',
        anonymous_id: browser,
        total: 1,
        currency: 'EUR',
        items: [],
        status: 'pending',
        created_at: placed,
      })),
    );
    await admin('PATCH', '/items/orders', { keys: ids, data: { status: 'paid' } });
    // The Flow sends the first 100 of one update's keys.
    expect(await counted(browser, 100)).toEqual({ orders: 100, revenue: 100 });
    await flowsSettle();
    await scheduledRun();
    expect(await counted(browser, 101)).toEqual({ orders: 101, revenue: 101 });
    await scheduledRun();
    expect(await ordersAtEdge(browser)).toEqual({ orders: 101, revenue: 101 });
  });
});
