/**
 * A privacy officer's requests end to end, against a real Directus: a person who browsed on
 * two browsers, signed in on both, chose, withdrew, ordered and still had events in the queue
 * is found whole by an access request, and erased from every store by one `DELETE`, the
 * messages still in flight and the late events of either browser included; and each event
 * in Directus names the choice it was collected under.
 */
import { describe, expect, it } from 'vitest';
import {
  anonId,
  collect,
  consentFor,
  makeEvent,
  people,
  productView,
  segment,
  signed,
  useRecordedQueue,
} from '../../src/ingest/test-support.ts';
import { admin, consume, deliveries, rows, syncQueued, uniqueId } from './support.ts';

const queue = useRecordedQueue();

/** Delivers what the Worker queued so far to the real consumer, as the queue would. */
const sync = () => syncQueued(queue.messages);

const choice = (anonymousId: string, purposes: string[], extra: Parameters<typeof makeEvent>[2] = {}) =>
  makeEvent(anonymousId, 'consent.updated', {
    properties: { ...consentFor(...purposes), source: 'banner' },
    consent: consentFor(...purposes),
    ...extra,
  });

interface Access {
  erasedAt?: string;
  profile?: { anonymousIds: string[]; consent?: { eventId: string } };
  downstream?: {
    personKeys: string[];
    people: { person_key: string }[];
    consentRecords: { id: string; person_key: string; policy_version: string; source: string }[];
    orders: { id: string }[];
    events: { id: string; person_key: string; name: string; enrichment?: { consentId?: string } }[];
  };
}

describe('a person of two browsers, signed in on both, who chose, withdrew and ordered', () => {
  it('is found whole by an access request, each event with its consent proof, and erased from every store with the events still in flight', async () => {
    const a = anonId('officer-a');
    const b = anonId('officer-b');
    const userId = uniqueId('officer-user');
    const signature = await signed(userId);
    const all = ['analytics', 'personalization', 'marketing'];

    const grantA = choice(a, all);
    const grantB = choice(b, all);
    const before = [grantA, productView(a, 'p-a1', 'shoes'), grantB, productView(b, 'p-b1', 'bags')];
    await collect(before.slice(0, 2));
    await collect(before.slice(2));
    await sync();
    const signInA = makeEvent(a, 'user.signed_in', { userId, userIdSignature: signature });
    const signInB = makeEvent(b, 'user.signed_in', { userId, userIdSignature: signature });
    await collect([signInA]);
    await collect([signInB]);
    await sync();
    // On browser B the person withdraws personalization and marketing.
    const withdrawal = choice(b, ['analytics'], { userId, userIdSignature: signature });
    await collect([withdrawal]);
    // The shop's backend reports the order, and keeps its row.
    const orderId = uniqueId('officer-order');
    expect(
      (
        await segment('/v1/track', {
          userId,
          event: 'Order Completed',
          properties: { order_id: orderId, total: 42 },
        })
      ).status,
    ).toBe(200);
    await admin('POST', '/items/orders', {
      id: orderId,
      site_id: 'demo',
      user_id: userId,
      anonymous_id: b,
      total: 42,
      currency: 'EUR',
      items: [{ productId: 'p-b1', quantity: 1 }],
      status: 'pending',
      created_at: new Date(Date.now() - 60_000).toISOString(),
    });
    await sync();
    // Browser A sends on; its messages are still in the queue when the erasure comes.
    const inFlightView = productView(a, 'p-a2', 'shoes', { userId, userIdSignature: signature });
    await collect([inFlightView]);
    const inFlight = queue.messages.splice(0);
    expect(inFlight.length).toBeGreaterThan(0);

    // Access: everything, under every key.
    const res = await people(`user:${userId}`, 'GET');
    expect(res.status).toBe(200);
    const held = (await res.json()) as Access;
    expect(held.profile?.anonymousIds.toSorted()).toEqual([a, b].toSorted());
    expect(held.downstream?.personKeys.toSorted()).toEqual(
      [`anon:${a}`, `anon:${b}`, `user:${userId}`].toSorted(),
    );
    expect(held.downstream?.consentRecords.map((r) => r.id).toSorted()).toEqual(
      [grantA.id, grantB.id, withdrawal.id].toSorted(),
    );
    expect(held.downstream?.orders.map((o) => o.id)).toEqual([orderId]);
    const logged = held.downstream?.events.map((e) => e.id) ?? [];
    for (const e of [...before, signInA, signInB, withdrawal]) expect(logged).toContain(e.id);
    expect(held.downstream?.events.map((e) => e.name)).toContain('order.completed');

    // Each event names the choice it was collected under, whose proof the answer lists.
    const proofOf = (name: string) => {
      const row = held.downstream?.events.find((e) => e.name === name && e.person_key === `user:${userId}`);
      const id = row?.enrichment?.consentId;
      return held.downstream?.consentRecords.find((r) => r.id === id);
    };
    expect(proofOf('order.completed')).toMatchObject({
      id: withdrawal.id,
      policy_version: '1',
      source: 'banner',
      categories: { analytics: true, personalization: false, marketing: false },
      chosen_at: expect.any(String),
    });
    const viewOnA = held.downstream?.events.find((e) => e.id === before[1]?.id);
    expect(viewOnA?.enrichment?.consentId).toBe(grantA.id);

    // Erasure.
    const erased = await people(`user:${userId}`, 'DELETE');
    expect(erased.status).toBe(200);
    const { erasureId, anonymousIds } = (await erased.json()) as { erasureId: string; anonymousIds: number };
    expect(anonymousIds).toBe(2);
    await sync();
    // The messages in flight reach the consumer after the erasure.
    expect((await consume(deliveries(inFlight))).retryMessages).toEqual([]);
    // Late events of either browser, after the tombstone.
    await collect([productView(a, 'p-a3', 'shoes')]);
    await collect([productView(b, 'p-b3', 'bags', { context: { consent: consentFor('analytics') } })]);
    await sync();

    const keys = [`anon:${a}`, `anon:${b}`, `user:${userId}`];
    for (const collection of ['people', 'events', 'consent_records', 'dead_letters'])
      expect(await rows(collection, { person_key: { _in: keys } }), collection).toEqual([]);
    const [order] = await rows<{ user_id: string | null; anonymous_id: string | null }>('orders', {
      id: { _eq: orderId },
    });
    expect(order).toMatchObject({ user_id: null, anonymous_id: null });
    const [proof] = await rows<Record<string, unknown>>('erasure_proofs', { id: { _eq: erasureId } });
    expect(proof).toMatchObject({ reason: 'request', people_deleted: 1, orders_anonymized: 1 });
    expect(proof?.erased_at).toEqual(expect.any(String));
    expect(proof?.events_deleted).toBe(logged.length);
    expect(proof?.consent_records_deleted).toBe(3);

    // Asked again, the officer is told only that the person was erased.
    for (const key of keys) {
      const again = (await (await people(key, 'GET')).json()) as Access;
      expect(again.erasedAt, key).toEqual(expect.any(String));
      expect(again.profile, key).toBeUndefined();
      expect(again.downstream?.events, key).toEqual([]);
      expect(again.downstream?.consentRecords, key).toEqual([]);
      expect(again.downstream?.orders, key).toEqual([]);
    }
  });
});
