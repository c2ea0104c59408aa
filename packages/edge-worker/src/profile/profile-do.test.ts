import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { type CustomerAction, type ErasureMessage, LIMITS } from '@attune/shared-schema';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ADMIN_HEADERS,
  ALL,
  anonId,
  collect,
  consentFor,
  inactivePastRetention,
  makeEvent,
  people,
  productView,
  SERVER_KEY,
  SITE,
  signed,
  storedTables,
  useRecordedQueue,
} from '../ingest/test-support.ts';
import { profileStub, recordOffer, viewProfile } from './client.ts';
import type { ProfileDO } from './profile-do.ts';
import type { PersonKey } from './types.ts';

/** Access to what the edge holds alone: this suite runs without Directus. */
const EDGE_ONLY = '&scope=edge';
/** How long a retention alarm waits at most (RETENTION_RECHECK_MS in profile-do.ts). */
const WEEK_MS = 7 * 86_400_000;

const queue = useRecordedQueue();

describe('access and erasure', () => {
  it('GET /v1/people/:id returns everything held, only to the admin', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    expect((await people(`anon:${a}`, 'GET', {})).status).toBe(401);
    expect((await people(`anon:${a}`, 'GET', { authorization: 'Bearer wrong' })).status).toBe(401);
    // This suite runs without Directus: the whole answer cannot be had, and the error says so.
    const whole = await people(`anon:${a}`, 'GET');
    expect(whole.status).toBe(502);
    expect(await whole.json()).toMatchObject({ error: { code: 'directus_unavailable' } });
    const res = await people(`anon:${a}`, 'GET', ADMIN_HEADERS, EDGE_ONLY);
    expect(res.status).toBe(200);
    const held = (await res.json()) as {
      profile: { recentActions: unknown[]; interests: Record<string, number> };
      seenEventIds: number;
    };
    expect(held.profile.recentActions).toHaveLength(1);
    expect(held.profile.interests['category:shoes']).toBe(1);
    expect(held.seenEventIds).toBe(1);
    expect((await people('anon:nobody-here', 'GET', ADMIN_HEADERS, EDGE_ONLY)).status).toBe(404);
    expect((await people('bogus', 'GET')).status).toBe(400);
  });

  it('GET of a browser merged into a person answers with the person’s profile too, as DELETE of it erases them', async () => {
    const a = anonId();
    const userId = `u-${anonId()}`;
    await collect([productView(a, 'p1', 'shoes')]);
    await collect([makeEvent(a, 'user.signed_in', { userId, userIdSignature: await signed(userId) })]);
    const res = await people(`anon:${a}`, 'GET', ADMIN_HEADERS, EDGE_ONLY);
    expect(res.status).toBe(200);
    const held = (await res.json()) as {
      aliasOf?: string;
      person?: { personId: string; profile?: { interests: Record<string, number> } };
    };
    expect(held.aliasOf).toBe(`user:${userId}`);
    // Before, the answer stopped at the link: what the person's profile holds was missing.
    expect(held.person?.personId).toBe(`user:${userId}`);
    expect(held.person?.profile?.interests['category:shoes']).toBeCloseTo(1, 5);
  });

  it('DELETE erases the person and merged browsers, sends an erasure message, and drops late events', async () => {
    const a = anonId();
    const userId = `u-${anonId()}`;
    await collect([productView(a, 'p1', 'shoes')]);
    await collect([makeEvent(a, 'user.signed_in', { userId, userIdSignature: await signed(userId) })]);
    queue.messages.length = 0;

    const res = await people(`user:${userId}`, 'DELETE');
    expect(res.status).toBe(200);
    const erasure = queue.messages.filter((m): m is ErasureMessage => m.kind === 'erasure');
    expect(erasure).toHaveLength(1);
    expect(erasure[0]).toMatchObject({ siteId: SITE, personId: `user:${userId}`, userId, anonymousIds: [a] });

    expect(await viewProfile(env, SITE, `user:${userId}`)).toBeNull();
    expect(await viewProfile(env, SITE, `anon:${a}`)).toBeNull();
    const held = (await (await people(`user:${userId}`, 'GET', ADMIN_HEADERS, EDGE_ONLY)).json()) as {
      profile?: unknown;
      erasedAt?: string;
    };
    expect(held.profile).toBeUndefined();
    expect(held.erasedAt).toEqual(expect.any(String));

    // A late event (an offline queue flushing) for the erased browser or person is dropped, not stored or forwarded.
    queue.messages.length = 0;
    const late = await collect([
      productView(a, 'p2', 'hats'),
      makeEvent(a, 'page.viewed', { userId, userIdSignature: await signed(userId) }),
    ]);
    expect(late.status).toBe(200);
    expect(await late.json()).toMatchObject({ accepted: 0, dropped: 2 });
    expect(queue.messages).toHaveLength(0);
    expect(await viewProfile(env, SITE, `user:${userId}`)).toBeNull();
  });

  it('the tombstone itself expires once no late event could still be accepted', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    await people(`anon:${a}`, 'DELETE');
    const stub = profileStub(env, SITE, `anon:${a}`);
    await runInDurableObject(stub, async (_o: ProfileDO, state) => {
      const alarm = await state.storage.getAlarm();
      expect(alarm).toBeGreaterThan(Date.now() + LIMITS.maxEventAgeMs);
      // Pretend the tombstone is old enough.
      state.storage.sql.exec(
        "UPDATE kv SET v = ? WHERE k = 'tombstone'",
        new Date(Date.now() - LIMITS.maxEventAgeMs - 2 * 86_400_000).toISOString(),
      );
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const gone = await people(`anon:${a}`, 'GET', ADMIN_HEADERS, EDGE_ONLY);
    expect(gone.status).toBe(404);
  });
});

describe('access during a replay', () => {
  it("answers with what the replay's row holds, while the replay runs and after it was abandoned", async () => {
    const userId = `u-${anonId()}`;
    const userIdSignature = await signed(userId);
    const b = anonId('b');
    await collect([
      makeEvent(b, 'consent.updated', {
        userId,
        userIdSignature,
        consent: ALL,
        properties: { ...ALL, source: 'banner' },
      }),
      productView(b, 'p1', 'shoes', { userId, userIdSignature }),
    ]);
    const stub = profileStub(env, SITE, `user:${userId}`);
    await stub.forgetForReplay();

    type Held = {
      identity?: { personKey: string };
      replaying?: { browsers: string[]; consent?: { state: { categories: Record<string, boolean> } } };
    };
    const during = await people(`user:${userId}`, 'GET', ADMIN_HEADERS, EDGE_ONLY);
    expect(during.status).toBe(200);
    const held = (await during.json()) as Held;
    expect(held.identity?.personKey).toBe(`user:${userId}`);
    expect(held.replaying?.browsers).toEqual([b]);
    expect(held.replaying?.consent?.state.categories.personalization).toBe(true);

    // Its CLI died two days ago: until the alarm finishes it, the row is all that is held.
    await runInDurableObject(stub, async (_o: ProfileDO, state) => {
      const row = state.storage.sql.exec<{ v: string }>("SELECT v FROM kv WHERE k = 'replaying'").one();
      const replaying = { ...(JSON.parse(row.v) as object), startedAt: Date.now() - 2 * 86_400_000 };
      state.storage.sql.exec("UPDATE kv SET v = ? WHERE k = 'replaying'", JSON.stringify(replaying));
    });
    const abandoned = await people(`user:${userId}`, 'GET', ADMIN_HEADERS, EDGE_ONLY);
    expect(abandoned.status).toBe(200);
    expect(((await abandoned.json()) as Held).replaying?.browsers).toEqual([b]);
  });
});

describe('retention alarm', () => {
  it('deletes a person inactive past the retention period and tells downstream', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const stub = profileStub(env, SITE, `anon:${a}`);
    const alarm = () => runInDurableObject(stub, (_o: ProfileDO, state) => state.storage.getAlarm());
    // Set within a week, not at the retention date (395 days out): see the next test.
    expect(await alarm()).toBeLessThanOrEqual(Date.now() + WEEK_MS);
    expect(await alarm()).toBeGreaterThan(Date.now() + WEEK_MS - 2 * 60 * 60 * 1000);

    // Still active: the alarm re-arms instead of deleting.
    await runInDurableObject(stub, (_o: ProfileDO, state) => state.storage.setAlarm(Date.now() + 60_000));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await viewProfile(env, SITE, `anon:${a}`)).not.toBeNull();

    // Inactive for longer than the period: deleted, with an erasure message, and no tombstone.
    await inactivePastRetention(stub);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await viewProfile(env, SITE, `anon:${a}`)).toBeNull();
    expect(queue.messages.some((m) => m.kind === 'erasure' && m.personId === `anon:${a}`)).toBe(true);
    // Gone without a tombstone, tables included: nothing of the object is left.
    expect(await runInDurableObject(stub, (_o: ProfileDO, state) => storedTables(state))).toEqual([]);
    // The visitor may come back as new.
    const again = await collect([productView(a, 'p2', 'hats')]);
    expect(await again.json()).toMatchObject({ accepted: 1 });
  });
});

describe('a retention period shortened after a person was last seen', () => {
  it('reaches them within a week: their alarm never waits for the date the longer period gave', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const stub = profileStub(env, SITE, `anon:${a}`);
    const alarm = () => runInDurableObject(stub, (_o: ProfileDO, state) => state.storage.getAlarm());
    const retentionMs = Number(env.PROFILE_RETENTION_DAYS) * 86_400_000;
    expect(retentionMs).toBeGreaterThan(WEEK_MS);
    // An alarm set the old way, at the retention date of the period in force then.
    await runInDurableObject(stub, (_o: ProfileDO, state) => state.storage.setAlarm(Date.now() + 60_000));
    // It fires while the person is within the period: it comes back within a week, when the
    // site's period is read again, rather than at last activity + the period.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await alarm()).toBeLessThanOrEqual(Date.now() + WEEK_MS);
    // By then past the (shorter) period: deleted.
    await inactivePastRetention(stub);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await viewProfile(env, SITE, `anon:${a}`)).toBeNull();
  });
});

describe('ProfileDO RPC for other capabilities', () => {
  it('recordOffer counts offers per rule up to the cap', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const key: PersonKey = `anon:${a}`;
    expect(await recordOffer(env, SITE, key, 'r1', 2)).toBe(true);
    expect(await recordOffer(env, SITE, key, 'r1', 2)).toBe(true);
    expect(await recordOffer(env, SITE, key, 'r1', 2)).toBe(false);
    expect((await viewProfile(env, SITE, key))?.offers).toEqual({ r1: 2 });
  });

  it('a browser whose first event is already signed still reads as its person', async () => {
    const a = anonId();
    const userId = `u-${anonId()}`;
    await collect([productView(a, 'p1', 'shoes', { userId, userIdSignature: await signed(userId) })]);
    const viaBrowser = await viewProfile(env, SITE, `anon:${a}`);
    expect(viaBrowser?.personKey).toBe(`user:${userId}`);
    expect(viaBrowser?.interests['category:shoes']).toBeCloseTo(1, 5);
  });
});

describe('dedupe when applying fails', () => {
  it('a batch that failed half-way is applied on retry, not taken for a duplicate', async () => {
    const a = anonId();
    const userId = `u-${anonId()}`;
    const event = makeEvent(a, 'product.viewed', {
      userId,
      properties: { productId: 'p1', category: 'shoes' },
    });
    const input = {
      event,
      enrichment: { receivedAt: new Date().toISOString(), correctedTimestamp: event.timestamp },
      personalization: true,
      consent: ALL,
    };
    const stub = profileStub(env, SITE, `user:${userId}`);
    await runInDurableObject(stub, async (instance: ProfileDO, state) => {
      // The first verified event of this browser merges its anonymous profile: make that hand-over fail.
      const holder = instance as unknown as { env: Env };
      const real = holder.env;
      holder.env = {
        ...real,
        PROFILE: {
          idFromName: (name: string) => real.PROFILE.idFromName(name),
          get: () => ({
            handOver: async () => {
              throw new Error('hand-over failed');
            },
          }),
        },
      } as unknown as Env;
      try {
        await expect(instance.ingest(SITE, `user:${userId}`, [input])).rejects.toThrow('hand-over failed');
      } finally {
        holder.env = real;
      }
      // The person's failed first batch left nothing behind, not even the identity row.
      expect(storedTables(state)).toEqual([]);
      const retried = await instance.ingest(SITE, `user:${userId}`, [input]);
      expect(retried.accepted).toEqual([event.id]);
      expect(retried.duplicates).toEqual([]);
      // …and once applied, the same event is a duplicate.
      const again = await instance.ingest(SITE, `user:${userId}`, [input]);
      expect(again.duplicates).toEqual([event.id]);
    });
    const view = await viewProfile(env, SITE, `user:${userId}`);
    expect(view?.counters['product.viewed']).toBe(1);
  });
});

describe('an order', () => {
  it('counts once, whatever event ids it arrives under (the browser, a backend, the Directus Flow or its catch-up)', async () => {
    const a = anonId();
    const order = (orderId: string) =>
      makeEvent(a, 'order.completed', { properties: { orderId, total: 40, currency: 'EUR' } });
    expect(await (await collect([order('o-1')])).json()).toMatchObject({ accepted: 1 });
    // The same order again, as another sender makes its event: a duplicate, not a second order.
    expect(await (await collect([order('o-1'), order('o-1')])).json()).toMatchObject({
      accepted: 0,
      duplicates: 2,
    });
    expect(await (await collect([order('o-2')])).json()).toMatchObject({ accepted: 1 });
    const view = await viewProfile(env, SITE, `anon:${a}`);
    expect(view?.counters.orders).toBe(2);
  });
});

describe('a refund', () => {
  /** Refunds come from the shop's backend, with the server key (a browser's are refused). */
  const fromServer = (batch: unknown[]) =>
    collect(batch, { origin: null, headers: { authorization: `Basic ${btoa(`${SERVER_KEY}:`)}` } });
  const order = (a: string, orderId: string, total: number, productIds: string[]) =>
    makeEvent(a, 'order.completed', {
      properties: {
        orderId,
        total,
        currency: 'EUR',
        products: productIds.map((productId) => ({ productId })),
      },
    });
  const refund = (a: string, orderId: string, total?: number, refundId?: string) =>
    makeEvent(a, 'order.refunded', {
      properties: {
        orderId,
        currency: 'EUR',
        reason: 'returned',
        ...(total === undefined ? {} : { total }),
        ...(refundId === undefined ? {} : { refundId }),
      },
    });
  /** Ten product views: enough for frequent_browser_rare_buyer while the person has at most one order. */
  const browsing = (a: string) => Array.from({ length: 10 }, (_, i) => productView(a, `v${i}`, 'dresses'));

  it('in full takes the order back: revenue, the order count, its products, and the segments they made', async () => {
    const a = anonId();
    await collect([...browsing(a), order(a, 'o-1', 300, ['p1', 'p2']), order(a, 'o-2', 250, ['p2', 'p3'])]);
    const before = await viewProfile(env, SITE, `anon:${a}`);
    expect(before?.counters).toMatchObject({ orders: 2, revenue: 550 });
    expect(before?.segments).toContain('high_value');
    expect(before?.segments).not.toContain('frequent_browser_rare_buyer');

    // No total: the whole order. p2 was bought in o-2 too, and stays bought.
    expect(await (await fromServer([refund(a, 'o-1')])).json()).toMatchObject({ accepted: 1 });
    const after = await viewProfile(env, SITE, `anon:${a}`);
    expect(after?.counters).toMatchObject({ orders: 1, revenue: 250 });
    expect(after?.purchased).toEqual(['p2', 'p3']);
    expect(after?.segments).not.toContain('high_value');
    expect(after?.segments).toContain('frequent_browser_rare_buyer');
  });

  it('in part lowers revenue by the refunded total and leaves the order counted', async () => {
    const a = anonId();
    await collect([order(a, 'o-1', 600, ['p1', 'p2'])]);
    expect((await viewProfile(env, SITE, `anon:${a}`))?.segments).toContain('high_value');
    await fromServer([refund(a, 'o-1', 150)]);
    const view = await viewProfile(env, SITE, `anon:${a}`);
    expect(view?.counters).toMatchObject({ orders: 1, revenue: 450 });
    expect(view?.purchased).toEqual(['p1', 'p2']);
    expect(view?.segments).not.toContain('high_value');
  });

  it('applies once, however often and under whichever event ids it is sent', async () => {
    const a = anonId();
    await collect([order(a, 'o-1', 600, ['p1'])]);
    const first = refund(a, 'o-1', 100);
    expect(await (await fromServer([first, refund(a, 'o-1', 100)])).json()).toMatchObject({
      accepted: 1,
      duplicates: 1,
    });
    // A backend's retry of the same event, and the same refund made again under a new id.
    expect(await (await fromServer([first, refund(a, 'o-1', 100)])).json()).toMatchObject({
      accepted: 0,
      duplicates: 2,
    });
    expect((await viewProfile(env, SITE, `anon:${a}`))?.counters).toMatchObject({ orders: 1, revenue: 500 });
  });

  it('returned an item at a time: each partial refund with its own refundId applies once, up to the whole order', async () => {
    const a = anonId();
    await collect([order(a, 'o-1', 300, ['p1', 'p2', 'p3'])]);
    const first = refund(a, 'o-1', 100, 'r-1');
    expect(await (await fromServer([first, refund(a, 'o-1', 100, 'r-2')])).json()).toMatchObject({
      accepted: 2,
      duplicates: 0,
    });
    expect((await viewProfile(env, SITE, `anon:${a}`))?.counters).toMatchObject({ orders: 1, revenue: 100 });
    // r-1 again under another event id is the same refund; r-3 takes what is left, and the order with it.
    expect(
      await (await fromServer([refund(a, 'o-1', 100, 'r-1'), refund(a, 'o-1', 150, 'r-3')])).json(),
    ).toMatchObject({
      accepted: 1,
      duplicates: 1,
    });
    const view = await viewProfile(env, SITE, `anon:${a}`);
    expect(view?.counters).toMatchObject({ orders: 0, revenue: 0 });
    expect(view?.purchased).toEqual([]);
  });

  it('of an order this person never counted changes nothing until that order counts; other orders it leaves alone', async () => {
    const a = anonId();
    await collect([order(a, 'o-1', 80, ['p1'])]);
    expect(await (await fromServer([refund(a, 'o-unknown')])).json()).toMatchObject({ accepted: 1 });
    const view = await viewProfile(env, SITE, `anon:${a}`);
    expect(view?.counters).toMatchObject({ orders: 1, revenue: 80 });
    expect(view?.purchased).toEqual(['p1']);
  });

  it('arriving before its order (the backend quicker than the order Flow) is held, and taken once the order counts', async () => {
    const a = anonId();
    // Returned whole before the order reached the edge, and one item of another order likewise.
    expect(await (await fromServer([refund(a, 'o-1'), refund(a, 'o-2', 100, 'r-1')])).json()).toMatchObject({
      accepted: 2,
    });
    expect((await viewProfile(env, SITE, `anon:${a}`))?.counters.orders ?? 0).toBe(0);
    // Held, as an access request shows.
    const access = await people(`anon:${a}`, 'GET', ADMIN_HEADERS, EDGE_ONLY);
    expect(((await access.json()) as { profile: { heldRefunds?: unknown[] } }).profile.heldRefunds).toEqual([
      expect.objectContaining({ orderId: 'o-1' }),
      expect.objectContaining({ orderId: 'o-2', refundId: 'r-1', total: 100 }),
    ]);
    await collect([...browsing(a), order(a, 'o-1', 300, ['p1']), order(a, 'o-2', 250, ['p2'])]);
    const view = await viewProfile(env, SITE, `anon:${a}`);
    expect(view?.counters).toMatchObject({ orders: 1, revenue: 150 });
    expect(view?.purchased).toEqual(['p2']);
    expect(view?.segments).toContain('frequent_browser_rare_buyer');
    // Held, it was claimed: the same refunds sent again (the backend's retry under new ids) are duplicates.
    expect(await (await fromServer([refund(a, 'o-1'), refund(a, 'o-2', 100, 'r-1')])).json()).toMatchObject({
      accepted: 0,
      duplicates: 2,
    });
    expect((await viewProfile(env, SITE, `anon:${a}`))?.counters).toMatchObject({ orders: 1, revenue: 150 });
  });

  it('held by the person is taken when a browser that counted the order signs in, and the other way round', async () => {
    const userId = `u-${anonId()}`;
    const signIn = async (browser: string) =>
      makeEvent(browser, 'user.signed_in', { userId, userIdSignature: await signed(userId) });
    const [phone, laptop] = [anonId(), anonId()];
    // The refund reaches the person (sent from the phone, signed in) before the laptop's guest order is theirs.
    await collect([await signIn(phone)]);
    await fromServer([{ ...refund(phone, 'o-1'), userId, userIdSignature: await signed(userId) }]);
    await collect([order(laptop, 'o-1', 300, ['p1'])]);
    await collect([await signIn(laptop)]);
    expect((await viewProfile(env, SITE, `user:${userId}`))?.counters).toMatchObject({
      orders: 0,
      revenue: 0,
    });
    // A browser's own held refund goes with it to the person, whose order then takes it.
    const tablet = anonId();
    await fromServer([refund(tablet, 'o-2', 50)]);
    await collect([await signIn(tablet)]);
    await collect([{ ...order(tablet, 'o-2', 200, ['p2']), userId, userIdSignature: await signed(userId) }]);
    expect((await viewProfile(env, SITE, `user:${userId}`))?.counters).toMatchObject({
      orders: 1,
      revenue: 150,
    });
  });

  it('held is forgotten when personalization is withdrawn', async () => {
    const a = anonId();
    await fromServer([refund(a, 'o-1')]);
    const analytics = consentFor('analytics');
    await collect([
      makeEvent(a, 'consent.updated', { consent: analytics, properties: { ...analytics, source: 'banner' } }),
    ]);
    await collect([
      makeEvent(a, 'consent.updated', { consent: ALL, properties: { ...ALL, source: 'banner' } }),
      order(a, 'o-1', 300, ['p1']),
    ]);
    expect((await viewProfile(env, SITE, `anon:${a}`))?.counters).toMatchObject({ orders: 1, revenue: 300 });
  });
});

describe('the dedupe window', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('forgets the ids of events older than 7 days, however few events the person sends', async () => {
    const a = anonId();
    const input = (at: number) => {
      const timestamp = new Date(at).toISOString();
      const event = makeEvent(a, 'product.viewed', {
        timestamp,
        properties: { productId: 'p1', category: 'shoes' },
      });
      return {
        event,
        enrichment: { receivedAt: timestamp, correctedTimestamp: timestamp },
        personalization: true,
        consent: ALL,
      };
    };
    await runInDurableObject(profileStub(env, SITE, `anon:${a}`), async (instance: ProfileDO) => {
      const start = Date.now();
      await instance.ingest(SITE, `anon:${a}`, [input(start), input(start + 1), input(start + 2)]);
      // Eight days on, the same object (never evicted here, as if it had been: few events) takes one more.
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(start + WEEK_MS + 86_400_000);
      await instance.ingest(SITE, `anon:${a}`, [input(Date.now())]);
      expect((JSON.parse(await instance.export()) as { seenEventIds: number }).seenEventIds).toBe(1);
    });
  });

  it('remembers an order as long as its event can arrive: marked completed eight days after it was paid, it counts once', async () => {
    const a = anonId();
    const orderId = `o-${a}`;
    const created = Date.now();
    const input = (name: string, properties: CustomerAction['properties'], at: number) => {
      const timestamp = new Date(at).toISOString();
      return {
        // A new event id each time: the paid-order Flow's, then the same order sent on another update.
        event: makeEvent(a, name, { timestamp, properties }),
        enrichment: { receivedAt: new Date().toISOString(), correctedTimestamp: timestamp },
        personalization: true,
        consent: ALL,
      };
    };
    const order = () => input('order.completed', { orderId, total: 40, currency: 'EUR' }, created);
    await runInDurableObject(profileStub(env, SITE, `anon:${a}`), async (instance: ProfileDO) => {
      await instance.ingest(SITE, `anon:${a}`, [order()]);
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(created + WEEK_MS + 86_400_000);
      // A view eight days on prunes the seen ids past the week.
      await instance.ingest(SITE, `anon:${a}`, [input('product.viewed', { productId: 'p1' }, Date.now())]);
      const again = await instance.ingest(SITE, `anon:${a}`, [order()]);
      expect(again.duplicates).toHaveLength(1);
      expect(again.profile.counters.orders).toBe(1);
    });
  });
});
