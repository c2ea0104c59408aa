/**
 * Replay: a person's ProfileDO rebuilt from the event log in Directus equals the
 * profile the live path built from the same events.
 */

import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import type { QueueMessage } from '@attune/shared-schema';
import { afterEach, describe, expect, it } from 'vitest';
import worker from '../../src/index.ts';
import { anonId, collect, makeEvent, productView, recordQueue } from '../../src/ingest/test-support.ts';
import type { ProfileView } from '../../src/profile/types.ts';
import { DIRECTUS_TEST } from './constants.mjs';
import { consume, deliveries, env, rows } from './support.ts';

let queue = recordQueue();
afterEach(() => {
  queue.restore();
  queue = recordQueue();
});

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

/**
 * What a person's profile means to decisions, without the clock-dependent parts (a new
 * ProfileDO starts its clock at creation, so replayed actions carry the replay's time).
 */
function essence(view: ProfileView | null) {
  if (!view) return null;
  return {
    personKey: view.personKey,
    segments: [...view.segments].sort(),
    counters: view.counters,
    recentActions: view.recentActions.map(({ at: _at, ...action }) => action),
    cart: view.cart,
    purchased: view.purchased,
    consent: view.consent?.categories,
    interests: Object.fromEntries(
      Object.entries(view.interests).map(([k, v]) => [k, Math.round(v * 1000) / 1000]),
    ),
  };
}

describe('replay', () => {
  it('rebuilds the same profile from the event log as the live path built', async () => {
    const a = anonId('replay');
    const personKey = `anon:${a}`;
    // Distinct times: within one request, replay orders events by when they happened.
    const start = Date.now() - 10_000;
    const at = (i: number) => ({ timestamp: new Date(start + i * 100).toISOString() });
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
    expect(live.segments.length + Object.keys(live.interests).length).toBeGreaterThan(0);
    const messages: QueueMessage[] = [...queue.messages];
    expect(messages.filter((m) => m.kind === 'event')).toHaveLength(5);

    // The consumer writes them to Directus…
    const result = await consume(deliveries(messages));
    expect(result.retryMessages).toEqual([]);
    expect(await rows('events', { person_key: { _eq: personKey } })).toHaveLength(5);

    // …and replay rebuilds the profile from there.
    const res = await replay(personKey);
    expect(res.status).toBe(200);
    const replayed = (await res.json()) as { events: number; accepted: number; profile: ProfileView };
    expect(replayed).toMatchObject({ events: 5, accepted: 5 });
    expect(essence(replayed.profile)).toEqual(essence(live));
    expect(essence((await stub.view()) as unknown as ProfileView)).toEqual(essence(live));
  });

  it('is an admin operation', async () => {
    expect((await replay('anon:someone', 'not-the-token')).status).toBe(401);
    expect((await replay('nobody-key')).status).toBe(400);
  });
});
