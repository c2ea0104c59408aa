/**
 * Replay: a person's ProfileDO rebuilt from the event log in Directus equals the
 * profile the live path built from the same events, timestamps and decayed interests
 * included; Directus's people row takes the rebuilt profile, and later ones.
 */

import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { eventMessagesOf, type QueueMessage } from '@attune/shared-schema';
import { describe, expect, it } from 'vitest';
import worker from '../../src/index.ts';
import {
  anonId,
  collect,
  consentFor,
  makeEvent,
  productView,
  useRecordedQueue,
} from '../../src/ingest/test-support.ts';
import type { ProfileView } from '../../src/profile/types.ts';
import { DIRECTUS_TEST } from './constants.mjs';
import { consume, deliveries, env, rows } from './support.ts';

const queue = useRecordedQueue();

async function replay(personKey: string, token = DIRECTUS_TEST.adminToken): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`http://attune.test/v1/admin/replay/${encodeURIComponent(personKey)}?siteId=demo`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    }),
    env(),
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** The Worker's INTEREST_HALF_LIFE_DAYS (wrangler.toml). */
const HALF_LIFE_MS = 14 * DAY_MS;

/**
 * A profile view as decisions see it, with interests decayed to one reference time, so
 * views read a few seconds apart compare equal (the profile's clock is event time; only
 * the reading time differs).
 */
function comparable(view: ProfileView | null, reference: number) {
  if (!view) return null;
  const factor = 2 ** (-(reference - Date.parse(view.asOf)) / HALF_LIFE_MS);
  const { asOf: _asOf, interests, segments, ...rest } = view;
  return {
    ...rest,
    segments: [...segments].sort(),
    interests: Object.fromEntries(
      Object.entries(interests).map(([k, v]) => [k, Math.round(v * factor * 1e6) / 1e6]),
    ),
  };
}

describe('replay', () => {
  it('rebuilds the same profile from the event log as the live path built, over days of history', async () => {
    const a = anonId('replay');
    const personKey = `anon:${a}`;
    // Spread over 20 days, so interest decay and timestamps across history are compared.
    const now = Date.now();
    const times = [
      now - 20 * DAY_MS,
      now - 20 * DAY_MS + 60_000,
      now - 12 * DAY_MS,
      now - 12 * DAY_MS + 60_000,
      now - 2 * DAY_MS,
    ];
    const at = (i: number) => ({ timestamp: new Date(times[i] ?? now).toISOString() });
    const batches = [
      [
        productView(a, 'p-storm-shell-jacket', 'outdoor', at(0)),
        productView(a, 'p-summit-hiking-boots', 'outdoor', at(1)),
      ],
      [
        makeEvent(a, 'cart.item.added', {
          properties: { productId: 'p-storm-shell-jacket', category: 'outdoor', price: 120 },
          ...at(2),
        }),
        productView(a, 'p-wok', 'kitchen', at(3)),
      ],
      [
        makeEvent(a, 'order.completed', {
          properties: { orderId: 'o-1', total: 120, products: [{ productId: 'p-storm-shell-jacket' }] },
          ...at(4),
        }),
      ],
    ];
    for (const batch of batches) expect((await collect(batch)).status).toBeLessThan(300);

    // The live profile, and the queue messages the Worker produced on the way.
    const stub = env().PROFILE.get(env().PROFILE.idFromName(`demo/${personKey}`));
    const live = (await stub.view()) as unknown as ProfileView;
    // The live profile keeps event time: first and last seen, action times, and interests
    // decayed since the events happened (a view 12 days ago weighs about half).
    const near = (iso: string, ms: number) => Math.abs(Date.parse(iso) - ms) < 5_000;
    expect(near(live.firstSeen, times[0] ?? 0)).toBe(true);
    expect(near(live.lastSeen, times[4] ?? 0)).toBe(true);
    expect(live.recentActions.map((r) => near(r.at, times[4 - live.recentActions.indexOf(r)] ?? 0))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    const kitchen = live.interests['category:kitchen'] ?? 0;
    const expectedKitchen = 2 ** (-(Date.parse(live.asOf) - (times[3] ?? 0)) / HALF_LIFE_MS);
    expect(kitchen).toBeCloseTo(expectedKitchen, 2);
    expect(kitchen).toBeLessThan(0.6);

    const messages: QueueMessage[] = [...queue.messages];
    // One events message per request (each request's events share person and purposes).
    expect(messages.filter((m) => m.kind === 'event')).toEqual([]);
    expect(messages.filter((m) => m.kind === 'events')).toHaveLength(batches.length);
    expect(eventMessagesOf(messages)).toHaveLength(5);

    // The consumer writes them to Directus…
    const result = await consume(deliveries(messages));
    expect(result.retryMessages).toEqual([]);
    expect(await rows('events', { person_key: { _eq: personKey } })).toHaveLength(5);

    // …and replay rebuilds the same profile from there: timestamps, interests, all of it.
    const res = await replay(personKey);
    expect(res.status).toBe(200);
    const replayed = (await res.json()) as { events: number; accepted: number; profile: ProfileView };
    expect(replayed).toMatchObject({ events: 5, accepted: 5 });
    const reference = Date.now();
    expect(comparable(replayed.profile, reference)).toEqual(comparable(live, reference));
    expect(comparable((await stub.view()) as unknown as ProfileView, reference)).toEqual(
      comparable(live, reference),
    );
  });

  it('sends the rebuilt profile to Directus, which keeps taking the profile after it', async () => {
    const a = anonId('replay');
    const personKey = `anon:${a}`;
    type PeopleRow = { version: number; interests: Record<string, number> };
    const person = async () => (await rows<PeopleRow>('people', { person_key: { _eq: personKey } }))[0];
    // Two views under analytics and personalization (logged), two under personalization only (not logged).
    await collect([productView(a, 'p1', 'shoes'), productView(a, 'p2', 'shoes')]);
    const personalizationOnly = { context: { consent: consentFor('personalization') } };
    await collect([
      productView(a, 'p3', 'hats', personalizationOnly),
      productView(a, 'p4', 'hats', personalizationOnly),
    ]);
    await consume(deliveries(queue.messages.splice(0)));
    expect((await person())?.interests['category:hats']).toBeGreaterThan(0);

    // The event log holds only the shoes: the rebuilt profile has no hats, and Directus shows that.
    expect((await replay(personKey)).status).toBe(200);
    await consume(deliveries(queue.messages.splice(0)));
    expect((await person())?.interests['category:hats']).toBeUndefined();
    expect((await person())?.interests['category:shoes']).toBeGreaterThan(0);

    // The next live event reaches the row too.
    await collect([productView(a, 'p5', 'garden')]);
    await consume(deliveries(queue.messages.splice(0)));
    expect((await person())?.interests['category:garden']).toBeGreaterThan(0);
  });

  it('is an admin operation', async () => {
    expect((await replay('anon:someone', 'not-the-token')).status).toBe(401);
    expect((await replay('nobody-key')).status).toBe(400);
  });
});
