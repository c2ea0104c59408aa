/**
 * A person's orders against a real Directus: an access request lists the site's orders
 * placed under their user id or a browser merged into them, and an erasure anonymises
 * those placed up to its request (the shop keeps its business records, not whose they were).
 */
import { describe, expect, it } from 'vitest';
import { people } from '../../src/ingest/test-support.ts';
import { admin, consume, deliveries, erasureMessage, profileMessage, rows, uniqueId } from './support.ts';

interface Order {
  id: string;
  site_id: string | null;
  user_id: string | null;
  anonymous_id: string | null;
  total: number;
  items: unknown;
  created_at: string | null;
}

const hoursFromNow = (hours: number) => new Date(Date.now() + hours * 3_600_000).toISOString();

/**
 * Creates an order as a shop's backend would. Pending: the order Flow sends only paid ones to
 * the edge, and the test wants the order row alone.
 */
async function placeOrder(fields: Partial<Order>): Promise<string> {
  const id = uniqueId('order');
  await admin('POST', '/items/orders', {
    id,
    site_id: 'demo',
    total: 42.5,
    currency: 'EUR',
    items: [{ productId: 'p-storm-shell-jacket', quantity: 1 }],
    status: 'pending',
    created_at: hoursFromNow(-1),
    ...fields,
  });
  return id;
}

async function order(id: string): Promise<Order | undefined> {
  const [row] = await rows<Order>('orders', { id: { _eq: id } });
  return row;
}

/** A signed-in person whose Directus row records a browser merged into them. */
async function personWithBrowser(label: string) {
  const userId = uniqueId(`${label}-user`);
  const browser = uniqueId(`${label}-browser`);
  const snapshot = profileMessage(`user:${userId}`, 1, 'buyers');
  snapshot.profile.anonymousIds = [browser];
  const result = await consume(deliveries([snapshot]));
  expect(result.retryMessages).toEqual([]);
  return { userId, browser };
}

describe("a person's orders", () => {
  it('are listed by an access request, under their user id and a merged browser, and no one else’s', async () => {
    const { userId, browser } = await personWithBrowser('access-orders');
    const signedIn = await placeOrder({ user_id: userId, created_at: hoursFromNow(-1) });
    // Placed before the sign-in, by the browser alone: listed first, the older.
    const asBrowser = await placeOrder({ anonymous_id: browser, created_at: hoursFromNow(-2) });
    await placeOrder({ user_id: uniqueId('someone-else'), anonymous_id: uniqueId('their-browser') });
    // Someone else signed in on the person's browser (a shared computer): their order, not this person's.
    await placeOrder({ user_id: uniqueId('shared-computer'), anonymous_id: browser });
    // The same user id on another site is another site's customer.
    await placeOrder({ site_id: 'another-shop', user_id: userId });
    // A backend that leaves site_id empty: the order Flow sends it as its site's, and this
    // Worker serves one site, so it is this person's.
    const unsited = await placeOrder({ site_id: null, user_id: userId, created_at: hoursFromNow(-0.5) });

    const res = await people(`user:${userId}`, 'GET');
    expect(res.status).toBe(200);
    const held = (await res.json()) as { downstream?: Record<string, unknown> & { orders?: Order[] } };
    expect(held.downstream?.orders?.map((o) => o.id)).toEqual([asBrowser, signedIn, unsited]);
    expect(held.downstream?.orders?.[1]).toMatchObject({ user_id: userId, total: 42.5 });
    // The events stay the answer's last key: they are streamed in after the rest.
    expect(Object.keys(held.downstream ?? {}).at(-1)).toBe('events');
  });

  it('are anonymised by an erasure up to its request, kept whole otherwise, and counted in the proof', async () => {
    const { userId, browser } = await personWithBrowser('erased-orders');
    const signedIn = await placeOrder({ user_id: userId, anonymous_id: browser });
    const asBrowser = await placeOrder({ anonymous_id: browser, created_at: hoursFromNow(-3) });
    // Whose it is cannot be told by its time: privacy first, as for the other collections.
    const undated = await placeOrder({ user_id: userId, created_at: null });
    // Placed after the erasure was requested: the person come back, not the erasure's to touch.
    const later = await placeOrder({ user_id: userId, created_at: hoursFromNow(1) });
    const otherBuyer = uniqueId('other-buyer');
    const someoneElses = await placeOrder({ user_id: otherBuyer });
    // Another account's order from the person's browser (a shared computer) is not theirs to erase.
    const sharedComputer = uniqueId('shared-computer');
    const onTheirBrowser = await placeOrder({ user_id: sharedComputer, anonymous_id: browser });
    const unsited = await placeOrder({ site_id: null, user_id: userId });

    const erasure = { ...erasureMessage(`user:${userId}`), reason: 'request' as const };
    erasure.anonymousIds = [browser];
    erasure.userId = userId;
    const delivery = deliveries([erasure]);
    const result = await consume(delivery);
    expect(result.retryMessages).toEqual([]);

    for (const id of [signedIn, asBrowser, undated, unsited])
      expect(await order(id)).toMatchObject({
        id,
        user_id: null,
        anonymous_id: null,
        // The shop's record of the sale stays.
        total: 42.5,
        items: [{ productId: 'p-storm-shell-jacket', quantity: 1 }],
      });
    expect(await order(later)).toMatchObject({ user_id: userId });
    expect(await order(someoneElses)).toMatchObject({ user_id: otherBuyer });
    expect(await order(onTheirBrowser)).toMatchObject({ user_id: sharedComputer, anonymous_id: browser });

    const [proof] = await rows<Record<string, unknown>>('erasure_proofs', { id: { _eq: delivery[0]?.id } });
    expect(proof).toMatchObject({ orders_anonymized: 4, people_deleted: 1 });
    expect(JSON.stringify(proof)).not.toContain(userId);
    expect(JSON.stringify(proof)).not.toContain(browser);
  });

  it('are kept whole by a retention erasure: it forgets an inactive person, not whom the shop sold to', async () => {
    const { userId, browser } = await personWithBrowser('retired-orders');
    const placed = await placeOrder({
      user_id: userId,
      anonymous_id: browser,
      created_at: hoursFromNow(-24),
    });
    const erasure = {
      ...erasureMessage(`user:${userId}`),
      anonymousIds: [browser],
      userId,
      reason: 'retention',
    };
    const delivery = deliveries([erasure]);
    expect((await consume(delivery)).retryMessages).toEqual([]);

    expect(await order(placed)).toMatchObject({ user_id: userId, anonymous_id: browser });
    const [proof] = await rows<Record<string, unknown>>('erasure_proofs', { id: { _eq: delivery[0]?.id } });
    expect(proof).toMatchObject({ reason: 'retention', orders_anonymized: 0, people_deleted: 1 });
  });
});
