/**
 * Replay against a stand-in event log (Directus's REST answers, stubbed at fetch): what it
 * must never do to a person who was erased, which keys it takes, a person whose merged
 * browsers keep sending while it runs, and what the log cannot give back (the events the
 * Worker made, promo caps, merged browsers with no events left, a consent record).
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import {
  type ConsentMessage,
  type ConsentState,
  type CustomerAction,
  DEFAULT_CONSENT_CONFIG,
  type ErasureMessage,
  eventMessagesOf,
} from '@attune/shared-schema';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FIXTURE_CATALOG } from '../catalog/fixtures/catalog.ts';
import { putCatalogSnapshot } from '../catalog/index.ts';
import { invalidateConsentConfig } from '../config/consent-config.ts';
import {
  ADMIN_HEADERS,
  ALL,
  anonId,
  call,
  collect,
  consentFor,
  makeEvent,
  people,
  productView,
  recordQueue,
  SITE,
  segment,
  signed,
  WRITE_KEY,
  within,
} from '../ingest/test-support.ts';
import { profileStub, viewProfile } from '../profile/client.ts';
import { ProfileDO } from '../profile/profile-do.ts';
import type { PersonKey, ProfileEventInput } from '../profile/types.ts';
import { type ConsentRow, consentRow, type EventRow, eventRow, newerSnapshot } from '../sync/mapping.ts';

let queue = recordQueue();
afterEach(() => {
  vi.restoreAllMocks();
  queue = recordQueue();
});

/** POST `path` (a replay route with its query) as the admin. */
function replayAt(path: string): Promise<Response> {
  return call(null, { method: 'POST', path, origin: null, headers: ADMIN_HEADERS });
}

/** POST /v1/admin/replay/:personKey as the admin. */
function replay(personKey: string): Promise<Response> {
  return replayAt(`/v1/admin/replay/${encodeURIComponent(personKey)}?site=${SITE}`);
}

/**
 * Answers Directus's `people`, `events` and `consent_records` reads with `rows` and
 * `consents`; everything else goes out as usual.
 */
function eventLog(rows: EventRow[], consents: ConsentRow[] = []): void {
  const original = globalThis.fetch;
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.pathname === '/items/people') return Response.json({ data: [] });
    if (url.pathname === '/items/consent_records') {
      const offset = Number(url.searchParams.get('offset') ?? '0');
      return Response.json({ data: offset === 0 ? consents : [] });
    }
    if (url.pathname === '/items/events') {
      const offset = Number(url.searchParams.get('offset') ?? '0');
      return Response.json({ data: offset === 0 ? rows : [] });
    }
    return original(input, init);
  });
}

describe('replay of an erased person', () => {
  it('keeps the tombstone: nothing is rebuilt and late events stay dropped', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    // What the event log still holds while the erasure message waits in the queue.
    const logged = eventMessagesOf(queue.messages).map(eventRow);
    expect(logged).toHaveLength(1);
    const erased = await people(`anon:${a}`, 'DELETE');
    expect(erased.status).toBe(200);

    eventLog(logged);
    await replay(`anon:${a}`);
    expect(await viewProfile(env, SITE, `anon:${a}`)).toBeNull();

    const late = await collect([productView(a, 'p2', 'hats')]);
    expect(await late.json()).toMatchObject({ accepted: 0, dropped: 1 });
  });
});

describe('which site a replay is of', () => {
  it('is named by `site`, as the people routes name it (`siteId` still works)', async () => {
    const call = (query: string) =>
      replayAt(`/v1/admin/replay/${encodeURIComponent(`anon:${anonId()}`)}?${query}`);
    // Before, `site` was ignored and the replay ran on the default site.
    const unknown = await call('site=no-such-site');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'unknown_site' } });
    expect((await call('siteId=no-such-site')).status).toBe(404);
  });
});

describe('which people can be replayed', () => {
  it('anyone whose id the event schema accepts, a space in it included', async () => {
    const a = `shop visitor ${anonId()}`;
    await collect([productView(a, 'p1', 'shoes')]);
    eventLog(eventMessagesOf(queue.messages).map(eventRow));
    const res = await replay(`anon:${a}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ personKey: `anon:${a}`, events: 1, accepted: 1 });
    // Over the id length limit, it names nobody.
    expect((await replay(`anon:${'x'.repeat(129)}`)).status).toBe(400);
  });
});

describe('replay of a person with merged browsers', () => {
  it('finishes while a merged browser forwards an event to the person', async () => {
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    await collect([productView(b, 'p1', 'shoes')]);
    await collect([productView(b, 'p2', 'hats', { userId, userIdSignature: await signed(userId) })]);
    expect(await profileStub(env, SITE, `anon:${b}`).aliasOf()).toBe(`user:${userId}`);
    eventLog(eventMessagesOf(queue.messages).map(eventRow));
    // Whenever the rebuild asks the browser to hand over, the browser is forwarding an event
    // to the person at that moment.
    const handOver = ProfileDO.prototype.handOver;
    vi.spyOn(ProfileDO.prototype, 'handOver').mockImplementation(async function (
      this: ProfileDO,
      to: PersonKey,
      siteId: string,
      self: PersonKey,
    ) {
      const now = new Date().toISOString();
      const input: ProfileEventInput = {
        event: makeEvent(b, 'page.viewed'),
        enrichment: { receivedAt: now, correctedTimestamp: now },
        personalization: true,
        consent: ALL,
      };
      void this.ingest(siteId, self, [input]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      return handOver.call(this, to, siteId, self);
    });
    const res = await within(replay(`user:${userId}`), 8_000);
    expect(res).not.toBe('timed out');
    if (res === 'timed out') return;
    expect(res.status).toBe(200);
    const rebuilt = await viewProfile(env, SITE, `user:${userId}`);
    expect(rebuilt?.anonymousIds).toEqual([b]);
    expect(rebuilt?.interests['category:shoes']).toBeGreaterThan(0);
    // The browser still routes to the person.
    expect(await profileStub(env, SITE, `anon:${b}`).aliasOf()).toBe(`user:${userId}`);
  }, 20_000);

  it('refuses to rebuild a merged browser alone, naming the person to replay', async () => {
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    await collect([productView(b, 'p1', 'shoes', { userId, userIdSignature: await signed(userId) })]);
    const res = await replay(`anon:${b}`);
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: { code: 'merged' } });
    expect(await profileStub(env, SITE, `anon:${b}`).aliasOf()).toBe(`user:${userId}`);
  });
});

describe('replay of a person who withdrew consent', () => {
  /** A person who granted everything and viewed a product (both logged), then withdrew (not logged); the log. */
  async function grantedThenWithdrew(a: string): Promise<EventRow[]> {
    const choice = (consent: typeof ALL) =>
      makeEvent(a, 'consent.updated', {
        properties: {
          categories: consent.categories,
          policyVersion: consent.policyVersion,
          source: 'banner',
        },
        consent,
      });
    await collect([choice(ALL), productView(a, 'p1', 'shoes')]);
    await collect([choice({ categories: { necessary: true }, policyVersion: ALL.policyVersion })]);
    return eventMessagesOf(queue.messages).map(eventRow);
  }

  async function withdrawn(a: string): Promise<void> {
    const view = await viewProfile(env, SITE, `anon:${a}`);
    expect(view?.consent?.categories.personalization).not.toBe(true);
    expect(view?.interests).toEqual({});
  }

  it('interrupted part-way, leaves the withdrawal in force; the replay run again keeps it', async () => {
    const a = anonId();
    eventLog(await grantedThenWithdrew(a));
    queue = recordQueue();
    const interrupted = vi
      .spyOn(ProfileDO.prototype, 'continueVersion')
      .mockRejectedValueOnce(new Error('interrupted'));
    expect((await replay(`anon:${a}`)).status).toBeGreaterThanOrEqual(500);
    interrupted.mockRestore();
    await withdrawn(a);
    expect((await replay(`anon:${a}`)).status).toBe(200);
    await withdrawn(a);
    expect(queue.messages.filter((m) => m.kind === 'profile')).toEqual([]);
  });

  it('keeps the withdrawal: nothing learned comes back and no granting snapshot goes downstream', async () => {
    const a = anonId();
    // The withdrawal is recorded at the edge, but nothing is logged without analytics.
    const logged = await grantedThenWithdrew(a);
    expect(logged.map((row) => row.name)).toEqual(['consent.updated', 'product.viewed']);
    queue = recordQueue();

    eventLog(logged);
    expect((await replay(`anon:${a}`)).status).toBe(200);
    await withdrawn(a);
    expect(queue.messages.filter((m) => m.kind === 'profile')).toEqual([]);
  });
});

describe('replay of a person who refused everything, then granted again', () => {
  const later = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  /** A choice made in a banner on `anonymousId`'s browser. */
  const chose = (anonymousId: string, consent: ConsentState, extra: Partial<CustomerAction> = {}) =>
    makeEvent(anonymousId, 'consent.updated', {
      consent,
      properties: { ...consent, source: 'banner' },
      ...extra,
    });
  /**
   * Grant, a view of shoes, "reject all" (recorded as a consent record, never logged: it
   * grants no analytics), a new grant and a view of hats; then a replay of the log. The
   * refusal is dated `refusalDatedBack` ms before it is sent (an offline device, a slow clock).
   */
  async function replayedAfterRefusal(
    refusalDatedBack: number,
    stored: (records: ConsentRow[]) => ConsentRow[] = (records) => records,
  ): Promise<string[]> {
    const a = anonId();
    const choice = (granted: boolean, timestamp = new Date().toISOString()) => {
      const consent = granted ? ALL : { categories: { necessary: true }, policyVersion: ALL.policyVersion };
      return makeEvent(a, 'consent.updated', {
        properties: { ...consent, source: 'banner' },
        consent,
        timestamp,
      });
    };
    const twoHoursAgo = new Date(Date.now() - 7_200_000).toISOString();
    await collect([choice(true, twoHoursAgo), productView(a, 'p1', 'shoes')]);
    await later(5);
    await collect([choice(false, new Date(Date.now() - refusalDatedBack).toISOString())]);
    await later(5);
    await collect([choice(true), productView(a, 'p2', 'hats')]);
    const live = await viewProfile(env, SITE, `anon:${a}`);
    expect(Object.keys(live?.interests ?? {})).not.toContain('category:shoes');
    const logged = eventMessagesOf(queue.messages).map(eventRow);
    // The log holds both grants, not the refusal between them.
    expect(logged.filter((row) => row.name === 'consent.updated')).toHaveLength(2);
    const records = queue.messages.filter((m): m is ConsentMessage => m.kind === 'consent').map(consentRow);
    expect(records).toHaveLength(3);

    eventLog(logged, stored(records));
    queue = recordQueue();
    expect((await replay(`anon:${a}`)).status).toBe(200);
    const snapshot = queue.messages.filter((m) => m.kind === 'profile').at(-1);
    expect(snapshot?.kind === 'profile' && Object.keys(snapshot.profile.interests)).toEqual(
      Object.keys((await viewProfile(env, SITE, `anon:${a}`))?.interests ?? {}),
    );
    return Object.keys((await viewProfile(env, SITE, `anon:${a}`))?.interests ?? {});
  }

  it('does not learn again from what they did before the refusal, which the log does not hold', async () => {
    // Before, the replay taught the profile the shoes again.
    expect(await replayedAfterRefusal(0)).toEqual(['category:hats', 'tag:hats-tag']);
  });

  it('nor when the refusal is dated before the view but reached the Worker after it, as it forgot the view then', async () => {
    expect(await replayedAfterRefusal(3_600_000)).toEqual(['category:hats', 'tag:hats-tag']);
  });

  it('nor when the refusal was recorded before choices carried their time (no chosen_at)', async () => {
    const withoutChoiceTime = (records: ConsentRow[]) =>
      records.map((r) =>
        r.categories.personalization === true ? r : { ...r, chosen_at: null as unknown as string },
      );
    expect(await replayedAfterRefusal(0, withoutChoiceTime)).toEqual(['category:hats', 'tag:hats-tag']);
  });

  it('a browser’s refusal that won the sign-in merge, so the person forgot everything, is not undone by a replay', async () => {
    const userId = `u-${anonId()}`;
    const userIdSignature = await signed(userId);
    const laptop = anonId('laptop');
    const browser = anonId('browser');
    const asUser = { userId, userIdSignature };
    await collect([chose(laptop, ALL, asUser), productView(laptop, 'p1', 'shoes', asUser)]);
    await later(5);
    // Anonymous on another browser, later, the visitor refuses personalization; then signs in there.
    const refusal = consentFor('analytics');
    await collect([chose(browser, refusal)]);
    await collect([makeEvent(browser, 'user.signed_in', { ...asUser, consent: refusal })]);
    await later(5);
    // Granted again on the laptop, and a new view.
    await collect([chose(laptop, ALL, asUser), productView(laptop, 'p2', 'hats', asUser)]);
    const live = Object.keys((await viewProfile(env, SITE, `user:${userId}`))?.interests ?? {});
    expect(live).not.toContain('category:shoes');

    const records = queue.messages.filter((m): m is ConsentMessage => m.kind === 'consent').map(consentRow);
    eventLog(eventMessagesOf(queue.messages).map(eventRow), records);
    expect((await replay(`user:${userId}`)).status).toBe(200);
    const rebuilt = Object.keys((await viewProfile(env, SITE, `user:${userId}`))?.interests ?? {});
    expect(rebuilt).not.toContain('category:shoes');
    expect(rebuilt).toContain('category:hats');
  });
});

describe('replay of a person whose choice predates the current policy version', () => {
  it('sends no personalized snapshot downstream until they choose again', async () => {
    const a = anonId();
    const choice = makeEvent(a, 'consent.updated', {
      properties: { categories: ALL.categories, policyVersion: ALL.policyVersion, source: 'banner' },
      consent: ALL,
    });
    await collect([choice, productView(a, 'p1', 'shoes')]);
    const logged = eventMessagesOf(queue.messages).map(eventRow);
    // Under the policy they chose under, the rebuilt profile goes downstream.
    eventLog(logged);
    queue = recordQueue();
    expect((await replay(`anon:${a}`)).status).toBe(200);
    expect(queue.messages.filter((m) => m.kind === 'profile')).toHaveLength(1);
    // The site's policy changes: the SDK asks them again; until they answer, nothing goes.
    const generation = await invalidateConsentConfig(env);
    await env.EDGE_CACHE.put(
      `consent-config:${generation}:${SITE}`,
      JSON.stringify({ ...DEFAULT_CONSENT_CONFIG, policyVersion: '2' }),
    );
    try {
      queue = recordQueue();
      expect((await replay(`anon:${a}`)).status).toBe(200);
      expect(queue.messages.filter((m) => m.kind === 'profile')).toEqual([]);
    } finally {
      await invalidateConsentConfig(env);
    }
  });
});

describe('replay and the events the Worker made', () => {
  it('rebuilds counters, recent actions and lastSeen as the live path built them, skipping promo.offered, decision.served and the like', async () => {
    await putCatalogSnapshot(env, FIXTURE_CATALOG);
    const a = anonId();
    // A choice on record (decide logs under it), a view of an accessory, and a cart add: the
    // profile answers with interest.shifted, the TRAIL rule with recommendation.triggered
    // and promo.offered.
    await collect([
      makeEvent(a, 'consent.updated', {
        properties: { categories: ALL.categories, policyVersion: ALL.policyVersion, source: 'banner' },
      }),
      productView(a, 'headlamp', 'outdoor-accessories'),
      makeEvent(a, 'cart.item.added', { properties: { productId: 'trail-jacket', category: 'outdoor' } }),
    ]);
    // A decide answer, logged as decision.served, after them.
    await call(null, {
      method: 'GET',
      path: `/v1/decide?slots=hero&writeKey=${WRITE_KEY}&anonymousId=${encodeURIComponent(a)}`,
    });
    const logged = eventMessagesOf(queue.messages).map(eventRow);
    expect(new Set(logged.map((row) => row.name))).toEqual(
      new Set([
        'consent.updated',
        'product.viewed',
        'cart.item.added',
        'interest.shifted',
        'recommendation.triggered',
        'promo.offered',
        'decision.served',
      ]),
    );
    const live = await viewProfile(env, SITE, `anon:${a}`);

    eventLog(logged);
    const res = await replay(`anon:${a}`);
    const rebuilt = await viewProfile(env, SITE, `anon:${a}`);
    expect(rebuilt?.counters).toEqual(live?.counters);
    expect(rebuilt?.recentActions.map((r) => r.name)).toEqual(live?.recentActions.map((r) => r.name));
    expect(rebuilt?.lastSeen).toBe(live?.lastSeen);
    // The person's own events, replayed.
    expect(await res.json()).toMatchObject({ events: 3, accepted: 3 });
  });

  it('keeps the promos offered counted: a capped promo is not offered again after a replay', async () => {
    await putCatalogSnapshot(env, FIXTURE_CATALOG);
    const a = anonId();
    const addJacket = () =>
      makeEvent(a, 'cart.item.added', { properties: { productId: 'trail-jacket', category: 'outdoor' } });
    const promos = () => eventMessagesOf(queue.messages).filter((m) => m.event.name === 'promo.offered');
    await collect([addJacket()]);
    expect(promos()).toHaveLength(1);
    eventLog(eventMessagesOf(queue.messages).map(eventRow));
    expect((await replay(`anon:${a}`)).status).toBe(200);
    // The TRAIL rule's cap is one per person.
    await collect([addJacket()]);
    expect(promos()).toHaveLength(1);
    const view = await viewProfile(env, SITE, `anon:${a}`);
    expect(view?.offers).toEqual({ 'outdoor-accessories': 1 });
    // The code offered is kept too, for decide's promo slot (the log does not rebuild it).
    expect(view?.promo?.code).toBe(promos()[0]?.event.properties?.code);
  });
});

describe('events named as the edge’s own, sent by a producer', () => {
  const expiresAt = () => new Date(Date.now() + 86_400_000).toISOString();

  it('are refused from a browser, each by index, so nothing spoofed is logged and the replay rebuilds the live profile', async () => {
    const a = anonId();
    const res = await collect([
      productView(a, 'p1', 'shoes'),
      makeEvent(a, 'promo.offered', {
        properties: { code: 'FREE-100', rule: 'spoof', expiresAt: expiresAt() },
      }),
      makeEvent(a, 'decision.served', {
        properties: { decisionId: 'd-spoof', slot: 'hero', variant: 'v1', holdout: false },
      }),
    ]);
    expect(res.status).toBe(207);
    const body = (await res.json()) as {
      accepted: number;
      rejected: { index: number; errors: { path: string; message: string }[] }[];
    };
    expect(body.accepted).toBe(1);
    expect(body.rejected.map((r) => [r.index, r.errors[0]?.path])).toEqual([
      [1, 'batch[1].name'],
      [2, 'batch[2].name'],
    ]);
    expect(body.rejected[0]?.errors[0]?.message).toMatch(
      /"promo\.offered" is reserved for events the Attune edge makes/,
    );
    const logged = eventMessagesOf(queue.messages).map(eventRow);
    expect(logged.map((row) => row.name)).toEqual(['product.viewed']);
    const live = await viewProfile(env, SITE, `anon:${a}`);
    expect(live?.counters).toEqual({ events: 1, 'product.viewed': 1 });

    eventLog(logged);
    expect((await replay(`anon:${a}`)).status).toBe(200);
    const rebuilt = await viewProfile(env, SITE, `anon:${a}`);
    expect(rebuilt?.counters).toEqual(live?.counters);
    expect(rebuilt?.recentActions.map((r) => r.name)).toEqual(live?.recentActions.map((r) => r.name));
  });

  it('are refused from a server producer on the Segment API (Segment’s "Promo Offered" is one)', async () => {
    const userId = `u-${anonId()}`;
    const consent = { categories: ALL.categories, policyVersion: ALL.policyVersion };
    const res = await segment('/v1/batch', {
      batch: [
        {
          type: 'track',
          userId,
          event: 'Product Viewed',
          properties: { product_id: 'p1' },
          context: { consent },
        },
        {
          type: 'track',
          userId,
          event: 'Promo Offered',
          properties: { code: 'FREE-100', rule: 'spoof', expiresAt: expiresAt() },
          context: { consent },
        },
      ],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      accepted: number;
      rejected: { index: number; errors: { path: string; message: string }[] }[];
    };
    expect(body.accepted).toBe(1);
    expect(body.rejected.map((r) => [r.index, r.errors[0]?.path])).toEqual([[1, 'batch[1].name']]);
    expect(eventMessagesOf(queue.messages).map((m) => m.event.name)).toEqual(['product.viewed']);
    expect((await viewProfile(env, SITE, `user:${userId}`))?.counters['promo.offered']).toBeUndefined();
  });
});

describe('replay of a person whose merged browser has no events left in the log', () => {
  it('links that browser again, first as it was (their holdout group stays), so erasing the person still erases it', async () => {
    const b = anonId('b');
    const c = anonId('c');
    const userId = `u-${anonId()}`;
    const signIn = { userId, userIdSignature: await signed(userId) };
    // Long ago they signed in on browser B; now they use phone C.
    await collect([productView(b, 'p1', 'shoes', signIn)]);
    await collect([productView(c, 'p2', 'hats', signIn)]);
    expect(await profileStub(env, SITE, `anon:${b}`).aliasOf()).toBe(`user:${userId}`);
    // B's events have aged out of the log (EVENT_RETENTION_DAYS).
    eventLog(
      eventMessagesOf(queue.messages)
        .map(eventRow)
        .filter((row) => row.anonymous_id === c),
    );
    expect((await replay(`user:${userId}`)).status).toBe(200);
    // In their order: decide keys the person's holdout group by the first (holdoutKey), and
    // the log alone would put C first.
    expect((await viewProfile(env, SITE, `user:${userId}`))?.anonymousIds).toEqual([b, c]);

    queue = recordQueue();
    expect((await people(`user:${userId}`, 'DELETE')).status).toBe(200);
    const erasure = queue.messages.find((m): m is ErasureMessage => m.kind === 'erasure');
    expect(erasure?.anonymousIds.sort()).toEqual([b, c].sort());
    expect(await profileStub(env, SITE, `anon:${b}`).erasedAt()).not.toBeNull();
  });
});

describe('replay while the queue refuses sends', () => {
  it('answers with the rebuilt profile and parks its snapshot for the alarm to send', async () => {
    const a = anonId('queue-down');
    await collect([productView(a, 'p1', 'shoes')]);
    eventLog(eventMessagesOf(queue.messages).map(eventRow));
    vi.spyOn(env.EVENTS, 'sendBatch').mockRejectedValue(new Error('Queue send failed'));
    vi.spyOn(env.EVENTS, 'send').mockRejectedValue(new Error('Queue send failed'));
    const res = await replay(`anon:${a}`);
    expect(res.status).toBe(200);
    const held = (await (await people(`anon:${a}`, 'GET', undefined, '&scope=edge')).json()) as {
      parked?: { kind: string }[];
    };
    expect(held.parked?.map((m) => m.kind)).toContain('profile');
  });
});

describe('replay of a log with a row it cannot read', () => {
  it('rebuilds from the others and says how many it left out, rather than stop half-way', async () => {
    const a = anonId('damaged');
    await collect([
      productView(a, 'p1', 'shoes'),
      productView(a, 'p2', 'shoes'),
      productView(a, 'p3', 'hats'),
    ]);
    const rows = eventMessagesOf(queue.messages).map(eventRow);
    expect(rows).toHaveLength(3);
    // A row written by hand or damaged: no enrichment (the column allows null), so no time.
    const damaged = { ...rows[1], enrichment: null } as unknown as EventRow;
    eventLog([rows[0] as EventRow, damaged, rows[2] as EventRow]);
    const res = await replay(`anon:${a}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ events: 3, accepted: 2, unreadable: 1 });
    const view = await viewProfile(env, SITE, `anon:${a}`);
    expect(view?.recentActions.map((r) => r.name)).toEqual(['product.viewed', 'product.viewed']);
  });
});

describe('replay of a person the log holds nothing of', () => {
  it('keeps their consent record, the proof of their choice, and when they were last seen', async () => {
    const a = anonId();
    // Personalization without analytics: nothing of theirs is logged.
    const personalization = consentFor('personalization');
    const choice = makeEvent(a, 'consent.updated', {
      properties: { categories: personalization.categories, policyVersion: '1', source: 'banner' },
      consent: personalization,
    });
    const view = makeEvent(a, 'product.viewed', {
      properties: { productId: 'p1', category: 'shoes' },
      consent: personalization,
    });
    await collect([choice, view]);
    expect(eventMessagesOf(queue.messages)).toEqual([]);
    const before = await viewProfile(env, SITE, `anon:${a}`);

    eventLog([]);
    expect((await replay(`anon:${a}`)).status).toBe(200);
    const held = (await (await people(`anon:${a}`, 'GET', ADMIN_HEADERS, '&scope=edge')).json()) as {
      profile?: { consent?: { eventId: string; state: { categories: Record<string, boolean> } } };
    };
    expect(held.profile?.consent?.eventId).toBe(choice.id);
    expect(held.profile?.consent?.state.categories.personalization).toBe(true);
    const after = await viewProfile(env, SITE, `anon:${a}`);
    expect(after?.lastSeen).toBe(before?.lastSeen);
  });
});

describe('a replay abandoned part-way (its CLI died)', () => {
  const DAY_MS = 86_400_000;
  const retentionMs = Number(env.PROFILE_RETENTION_DAYS) * DAY_MS;

  /**
   * A signed-in person with a consent record, a merged browser and a promo offered; then a
   * replay that forgot them (its first step) and never went on. Returns the person's key.
   */
  async function abandonedReplay(): Promise<{ key: PersonKey; browser: string; choiceId: string }> {
    await putCatalogSnapshot(env, FIXTURE_CATALOG);
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    const signIn = { userId, userIdSignature: await signed(userId) };
    const choice = makeEvent(b, 'consent.updated', {
      properties: { categories: ALL.categories, policyVersion: ALL.policyVersion, source: 'banner' },
      ...signIn,
    });
    const addJacket = makeEvent(b, 'cart.item.added', {
      properties: { productId: 'trail-jacket', category: 'outdoor' },
      ...signIn,
    });
    await collect([choice, addJacket]);
    const key: PersonKey = `user:${userId}`;
    expect((await viewProfile(env, SITE, key))?.offers).toEqual({ 'outdoor-accessories': 1 });
    await profileStub(env, SITE, key).forgetForReplay();
    expect(await viewProfile(env, SITE, key)).toBeNull();
    queue = recordQueue();
    return { key, browser: b, choiceId: choice.id };
  }

  /** Makes the replay under way in `key`'s object a day old, `lastSeen` ago by its kept times, and its alarm due. */
  async function dayOld(key: PersonKey, lastSeen?: number): Promise<void> {
    await runInDurableObject(profileStub(env, SITE, key), async (_o: ProfileDO, state) => {
      const row = state.storage.sql.exec<{ v: string }>("SELECT v FROM kv WHERE k = 'replaying'").one();
      const replaying = JSON.parse(row.v) as { startedAt?: number; seen?: { first: string; last: string } };
      replaying.startedAt = Date.now() - DAY_MS - 60_000;
      if (lastSeen !== undefined && replaying.seen !== undefined) {
        const at = new Date(Date.now() - lastSeen).toISOString();
        replaying.seen = { first: at, last: at };
      }
      state.storage.sql.exec("UPDATE kv SET v = ? WHERE k = 'replaying'", JSON.stringify(replaying));
      await state.storage.setAlarm(Date.now() + 60_000);
    });
  }

  it('gives the person back what it kept when the alarm finds it: consent proof, merged browser, promos offered', async () => {
    const { key, browser, choiceId } = await abandonedReplay();
    await dayOld(key);
    expect(await runDurableObjectAlarm(profileStub(env, SITE, key))).toBe(true);

    const held = (await (await people(key, 'GET', ADMIN_HEADERS, '&scope=edge')).json()) as {
      profile?: { consent?: { eventId: string; state: { categories: Record<string, boolean> } } };
    };
    expect(held.profile?.consent?.eventId).toBe(choiceId);
    expect(held.profile?.consent?.state.categories.marketing).toBe(true);
    const view = await viewProfile(env, SITE, key);
    expect(view?.anonymousIds).toEqual([browser]);
    expect(view?.offers).toEqual({ 'outdoor-accessories': 1 });
    // Not an expiry: nothing was erased downstream, and the browser is still the person's.
    expect(queue.messages.filter((m) => m.kind === 'erasure')).toEqual([]);
    expect(await profileStub(env, SITE, `anon:${browser}`).aliasOf()).toBe(key);
    // The person's retention runs on.
    const alarm = await runInDurableObject(profileStub(env, SITE, key), (_o: ProfileDO, state) =>
      state.storage.getAlarm(),
    );
    expect(alarm).toBeGreaterThan(Date.now());
  });

  it('still deletes everything, downstream and merged browsers too, when the person is past retention', async () => {
    const { key, browser } = await abandonedReplay();
    await dayOld(key, retentionMs + DAY_MS);
    expect(await runDurableObjectAlarm(profileStub(env, SITE, key))).toBe(true);

    expect(await viewProfile(env, SITE, key)).toBeNull();
    const held = await people(key, 'GET', ADMIN_HEADERS, '&scope=edge');
    expect(held.status).toBe(404);
    const erasure = queue.messages.find((m): m is ErasureMessage => m.kind === 'erasure');
    expect(erasure).toMatchObject({ personId: key, anonymousIds: [browser] });
    expect(await profileStub(env, SITE, `anon:${browser}`).aliasOf()).toBeNull();
  });

  it('is covered by an erasure meanwhile: the browsers only its row holds are tombstoned and named downstream', async () => {
    const { key, browser } = await abandonedReplay();
    const erased = await people(key, 'DELETE');
    expect(erased.status).toBe(200);
    const erasure = queue.messages.find((m): m is ErasureMessage => m.kind === 'erasure');
    expect(erasure).toMatchObject({ personId: key, anonymousIds: [browser], userId: key.slice(5) });
    expect(await profileStub(env, SITE, `anon:${browser}`).erasedAt()).not.toBeNull();
  });

  it('is not taken for an expiry while it runs: the person was last seen when the row says, not at the oldest rebuilt event', async () => {
    const { key } = await abandonedReplay();
    const stub = profileStub(env, SITE, key);
    // The replay's first chunk: an event older than the retention period (a site may keep
    // profiles for a shorter time than the event log keeps events).
    const long = new Date(Date.now() - retentionMs - DAY_MS).toISOString();
    const old: ProfileEventInput = {
      event: { ...makeEvent(anonId(), 'page.viewed'), timestamp: long },
      enrichment: { receivedAt: long, correctedTimestamp: long },
      personalization: true,
      consent: ALL,
    };
    await stub.ingest(SITE, key, [old]);
    await runInDurableObject(stub, (_o: ProfileDO, state) => state.storage.setAlarm(Date.now() + 60_000));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await viewProfile(env, SITE, key)).not.toBeNull();
    expect(queue.messages.filter((m) => m.kind === 'erasure')).toEqual([]);
    // The replay then finishes with what it kept.
    await stub.continueVersion(0);
    expect((await viewProfile(env, SITE, key))?.offers).toEqual({ 'outdoor-accessories': 1 });
  });

  /**
   * Rewrites the `replaying` row of `key`'s object as `edit` says, then evicts the object, so
   * its next wake-up reads the row from storage (as the deployed code's would).
   */
  async function editReplaying(key: PersonKey, edit: (row: Record<string, unknown>) => void): Promise<void> {
    const stub = profileStub(env, SITE, key);
    await runInDurableObject(stub, (_o: ProfileDO, state) => {
      const row = state.storage.sql.exec<{ v: string }>("SELECT v FROM kv WHERE k = 'replaying'").one();
      const replaying = JSON.parse(row.v) as Record<string, unknown>;
      edit(replaying);
      state.storage.sql.exec("UPDATE kv SET v = ? WHERE k = 'replaying'", JSON.stringify(replaying));
    });
    await evictDurableObject(stub);
  }

  /** A live page view reaching `key`'s object now, while its replay is under way. */
  async function livePageView(key: PersonKey): Promise<void> {
    const now = new Date().toISOString();
    await profileStub(env, SITE, key).ingest(SITE, key, [
      {
        event: makeEvent(anonId(), 'page.viewed'),
        enrichment: { receivedAt: now, correctedTimestamp: now },
        personalization: true,
        consent: ALL,
      },
    ]);
  }

  it('a live event ahead of its first chunk keeps the person’s first seen: Directus does not take that snapshot for a later life', async () => {
    const { key } = await abandonedReplay();
    const hour = 60 * 60 * 1000;
    const seen = {
      first: new Date(Date.now() - 2 * hour).toISOString(),
      last: new Date(Date.now() - hour).toISOString(),
    };
    await editReplaying(key, (row) => {
      row.seen = seen;
    });
    await livePageView(key);
    const profile = await viewProfile(env, SITE, key);
    expect(profile?.firstSeen).toBe(seen.first);
    // The row Directus holds from before the replay stays until the replay's own snapshot.
    const row = { version: 7, first_seen: seen.first, last_seen: seen.last };
    // (The live profile is numbered from 1 again: below the row's version.)
    const live = {
      version: 1,
      first_seen: profile?.firstSeen,
      last_seen: profile?.lastSeen,
    };
    expect(newerSnapshot(live, row)).toBe(false);
  });

  it('written before rows carried their start, is not finished at once by an event arriving during it', async () => {
    const { key } = await abandonedReplay();
    const stub = profileStub(env, SITE, key);
    // The row as the code before startedAt wrote it (a replay running across that deploy),
    // read from storage by the deployed code's first wake-up.
    await editReplaying(key, (row) => {
      delete row.startedAt;
    });
    await livePageView(key);
    // The alarm stays a day out, and the replay under way: its CLI may still be sending chunks.
    // (Before, the alarm was set to a day after 1970, fired, and finished the replay.)
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { alarm, underWay } = await runInDurableObject(stub, async (_o: ProfileDO, state) => ({
      alarm: await state.storage.getAlarm(),
      underWay: state.storage.sql.exec("SELECT 1 FROM kv WHERE k = 'replaying'").toArray().length === 1,
    }));
    expect(underWay).toBe(true);
    expect(alarm).toBeGreaterThan(Date.now() + DAY_MS - 60_000);
  });
});
