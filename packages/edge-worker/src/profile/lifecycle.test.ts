/**
 * A person's lifecycle across Durable Objects: erasure and retention while their merged
 * browsers are still sending, erasure of a browser whose hand-over is under way, the link
 * an analytics-only sign-in makes, the retention alarm when the queue is briefly
 * unavailable or the object is evicted while it forgets the browsers, a sign-in on a browser
 * whose newer choice withdrew personalization, and older events (and consent choices)
 * arriving after newer ones.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import type {
  ConsentMessage,
  ConsentState,
  CustomerAction,
  ErasureMessage,
  ProfileMessage,
} from '@attune/shared-schema';
import { describe, expect, it, vi } from 'vitest';
import { QUEUE_SEND_BUDGET_MS } from '../ingest/queue-producer.ts';
import {
  ADMIN_HEADERS,
  anonId,
  collect,
  consentFor,
  envWithSites,
  inactivePastRetention,
  makeEvent,
  ORIGIN,
  people,
  productView,
  SITE,
  segment,
  signed,
  stuckQueueCall,
  useRecordedQueue,
  WRITE_KEY,
  within,
} from '../ingest/test-support.ts';
import { exportProfile, ingestProfile, profileStub, viewProfile } from './client.ts';
import { MAX_BROWSERS } from './model.ts';
import { type ErasureResult, ProfileDO } from './profile-do.ts';
import type { PersonKey } from './types.ts';

const queue = useRecordedQueue();

/** A person signed in from `count` browsers: each became an alias of the person. */
async function signedInBrowsers(
  count: number,
): Promise<{ userId: string; browsers: string[]; last: string }> {
  const userId = `u-${anonId()}`;
  const signature = await signed(userId);
  const browsers = Array.from({ length: count }, () => anonId('b'));
  await collect(browsers.map((b) => productView(b, 'p1', 'shoes', { userId, userIdSignature: signature })));
  const last = browsers[browsers.length - 1] ?? '';
  expect(await profileStub(env, SITE, `anon:${last}`).aliasOf()).toBe(`user:${userId}`);
  return { userId, browsers, last };
}

describe('erasure while a merged browser is sending', () => {
  it('finishes instead of deadlocking with the browser forwarding its event to the person', async () => {
    const { userId, last } = await signedInBrowsers(12);

    // The person is erased while one of their browsers sends an anonymous event.
    const erase = people(`user:${userId}`, 'DELETE');
    const racing = collect([productView(last, 'p2', 'hats')]);
    const outcome = await within(Promise.all([erase, racing]), 10_000);
    expect(outcome).not.toBe('timed out');
    if (outcome === 'timed out') return;
    expect(outcome[0].status).toBe(200);
    expect(await viewProfile(env, SITE, `user:${userId}`)).toBeNull();
    expect(await viewProfile(env, SITE, `anon:${last}`)).toBeNull();
    // The answer names the erasure, which its proof in Directus is kept under.
    const { erasureId } = (await outcome[0].json()) as { erasureId?: string };
    const erasure = queue.messages.find(
      (m): m is ErasureMessage => m.kind === 'erasure' && m.personId === `user:${userId}`,
    );
    expect(erasure).toMatchObject({ reason: 'request', erasureId });
    expect(erasureId).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
  }, 20_000);
});

describe('retention while a merged browser is sending', () => {
  it('finishes instead of deadlocking; the browser event that raced it is kept, and no browser stays linked', async () => {
    const { userId, browsers, last } = await signedInBrowsers(12);
    const person = profileStub(env, SITE, `user:${userId}`);
    await inactivePastRetention(person);

    // The alarm fires as one of the person's browsers comes back with an anonymous event.
    const outcome = await within(
      Promise.all([runDurableObjectAlarm(person), collect([productView(last, 'p2', 'hats')])]),
      10_000,
    );
    expect(outcome).not.toBe('timed out');
    if (outcome === 'timed out') return;
    expect(await outcome[1].json()).toMatchObject({ accepted: 1 });
    const erasure = queue.messages.find(
      (m): m is ErasureMessage => m.kind === 'erasure' && m.personId === `user:${userId}`,
    );
    expect(erasure?.anonymousIds.toSorted()).toEqual(browsers.toSorted());
    // Its proof will say why it happened, under an id of its own.
    expect(erasure?.reason).toBe('retention');
    expect(erasure?.erasureId).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    for (const b of browsers) expect(await profileStub(env, SITE, `anon:${b}`).aliasOf()).toBeNull();
    // What the person had learned is gone; only the racing event's page view is held.
    const after = await viewProfile(env, SITE, `user:${userId}`);
    expect(after?.interests['category:shoes']).toBeUndefined();
  }, 20_000);
});

describe('retention interrupted while forgetting the merged browsers', () => {
  it('comes back within a minute to finish, even after a browser event started the person anew', async () => {
    const { userId, browsers, last } = await signedInBrowsers(3);
    const person = profileStub(env, SITE, `user:${userId}`);
    await inactivePastRetention(person);

    // While the alarm forgets the browsers, one of them sends an event (which starts the
    // person anew and schedules its retention), then the object is evicted mid-way.
    vi.spyOn(ProfileDO.prototype, 'forget').mockImplementationOnce(async () => {
      expect(await (await collect([productView(last, 'p2', 'hats')])).json()).toMatchObject({ accepted: 1 });
      throw new Error('evicted');
    });
    await expect(runDurableObjectAlarm(person)).rejects.toThrow('evicted');
    const alarmAt = await runInDurableObject(person, (_, state) => state.storage.getAlarm());
    expect(alarmAt).not.toBeNull();
    expect(alarmAt ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(Date.now() + 61_000);

    // The retry is interrupted too: it still comes back within a minute.
    vi.spyOn(ProfileDO.prototype, 'forget').mockImplementationOnce(async () => {
      throw new Error('evicted again');
    });
    await expect(runDurableObjectAlarm(person)).rejects.toThrow('evicted again');
    const retryAt = await runInDurableObject(person, (_, state) => state.storage.getAlarm());
    expect(retryAt ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(Date.now() + 61_000);

    expect(await runDurableObjectAlarm(person)).toBe(true);
    for (const b of browsers) expect(await profileStub(env, SITE, `anon:${b}`).aliasOf()).toBeNull();
  }, 20_000);
});

/** The browser hands its profile over, then the person's write fails (an eviction, a failed statement). */
function failAfterHandOver(): void {
  const handOver = ProfileDO.prototype.handOver;
  vi.spyOn(ProfileDO.prototype, 'handOver').mockImplementationOnce(async function (
    this: ProfileDO,
    to: PersonKey,
    siteId: string,
    self: PersonKey,
  ) {
    await handOver.call(this, to, siteId, self);
    throw new Error('evicted');
  });
}

describe('a sign-in whose person fails after the browser handed over', () => {
  it('keeps the browser’s history: the retried sign-in takes it again', async () => {
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    await collect([productView(b, 'p1', 'shoes')]);
    failAfterHandOver();
    const signIn = [productView(b, 'p2', 'hats', { userId, userIdSignature: await signed(userId) })];
    expect((await collect(signIn)).status).toBeGreaterThanOrEqual(500);
    vi.restoreAllMocks();
    expect(await (await collect(signIn)).json()).toMatchObject({ accepted: 1 });
    const person = await viewProfile(env, SITE, `user:${userId}`);
    expect(person?.counters['product.viewed']).toBe(2);
    expect(person?.interests['category:shoes']).toBeGreaterThan(0);
    // Stored: the browser's copy is gone (it is an alias holding nothing of its own).
    await vi.waitFor(async () => {
      const held = await exportProfile(env, SITE, `anon:${b}`);
      expect(held.handedOver).toBeUndefined();
      expect(held.seenEventIds).toBe(0);
    });
  });

  it('takes the history with the browser’s next anonymous event, without deadlocking the two objects', async () => {
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    await collect([productView(b, 'p1', 'shoes')]);
    failAfterHandOver();
    const signIn = [productView(b, 'p2', 'hats', { userId, userIdSignature: await signed(userId) })];
    expect((await collect(signIn)).status).toBeGreaterThanOrEqual(500);
    vi.restoreAllMocks();
    // The browser forwards this to the person from within its own turn; the person, not
    // listing the browser, asks it for its profile from within theirs.
    const next = await within(collect([productView(b, 'p3', 'shoes')]), 5_000);
    expect(next).not.toBe('timed out');
    if (next === 'timed out') return;
    expect(await next.json()).toMatchObject({ accepted: 1 });
    const person = await viewProfile(env, SITE, `user:${userId}`);
    expect(person?.counters['product.viewed']).toBe(2);
    expect(person?.interests['category:shoes']).toBeGreaterThan(1);
  });
});

describe('the copy a browser keeps of what it handed over', () => {
  /** A browser with one anonymous view, and a person whose write fails right after the browser handed it over. */
  async function failedSignIn() {
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    await collect([productView(b, 'p1', 'shoes')]);
    failAfterHandOver();
    const signature = await signed(userId);
    expect(
      (await collect([productView(b, 'p2', 'hats', { userId, userIdSignature: signature })])).status,
    ).toBe(500);
    vi.restoreAllMocks();
    queue.restart();
    return { b, userId, signature, browser: profileStub(env, SITE, `anon:${b}`) };
  }

  /** A browser signed in whose hand-over the person stored but whose confirmation was lost. */
  async function signInWithLostConfirmation() {
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    await collect([productView(b, 'p1', 'shoes')]);
    vi.spyOn(ProfileDO.prototype, 'confirmHandOver').mockImplementationOnce(async () => {
      throw new Error('lost');
    });
    await collect([productView(b, 'p2', 'hats', { userId, userIdSignature: await signed(userId) })]);
    return { b, userId };
  }

  it('goes once the person is asked and holds the browser (its confirmation was lost)', async () => {
    const { b, userId } = await signInWithLostConfirmation();
    const browser = profileStub(env, SITE, `anon:${b}`);
    expect((await exportProfile(env, SITE, `anon:${b}`)).handedOver).toBeDefined();
    expect(await runDurableObjectAlarm(browser)).toBe(true);
    const held = await exportProfile(env, SITE, `anon:${b}`);
    expect(held.handedOver).toBeUndefined();
    expect(held.seenEventIds).toBe(0);
    expect(held.aliasOf).toBe(`user:${userId}`);
  });

  it('is in the person’s access answer while it holds their copy (an access request lists what DELETE erases)', async () => {
    const { b, userId } = await signInWithLostConfirmation();
    const res = await people(`user:${userId}`, 'GET', undefined, '&scope=edge');
    expect(res.status).toBe(200);
    const held = (await res.json()) as {
      browsers?: { personId: string; handedOver?: { anonymousIds: string[] } }[];
    };
    expect(held.browsers?.map((x) => x.personId)).toEqual([`anon:${b}`]);
    expect(held.browsers?.[0]?.handedOver?.anonymousIds).toEqual([b]);
    // Once the person confirmed, the browser holds nothing of them but its link: not listed.
    expect(await runDurableObjectAlarm(profileStub(env, SITE, `anon:${b}`))).toBe(true);
    const after = (await (await people(`user:${userId}`, 'GET', undefined, '&scope=edge')).json()) as {
      browsers?: unknown[];
    };
    expect(after.browsers).toBeUndefined();
  });

  it('is erased, here and downstream, when the person it was handed to was erased', async () => {
    const { b, userId, browser } = await failedSignIn();
    expect((await people(`user:${userId}`, 'DELETE')).status).toBe(200);
    expect(await runDurableObjectAlarm(browser)).toBe(true);
    expect(await browser.erasedAt()).not.toBeNull();
    expect((await exportProfile(env, SITE, `anon:${b}`)).handedOver).toBeUndefined();
    expect(queue.messages).toContainEqual(
      expect.objectContaining({ kind: 'erasure', personId: `anon:${b}`, anonymousIds: [b] }),
    );
  });

  it('is kept for a retry for a week, then the hand-over is undone and the next sign-in makes it again', async () => {
    const { b, userId, signature, browser } = await failedSignIn();
    expect(await runDurableObjectAlarm(browser)).toBe(true);
    expect((await exportProfile(env, SITE, `anon:${b}`)).handedOver).toBeDefined();
    // A week on without a retry.
    await runInDurableObject(browser, async (_o: ProfileDO, state) => {
      state.storage.sql.exec(
        "UPDATE kv SET v = ? WHERE k = 'handed_at'",
        String(Date.now() - 8 * 86_400_000),
      );
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    expect(await runDurableObjectAlarm(browser)).toBe(true);
    const undone = await exportProfile(env, SITE, `anon:${b}`);
    expect(undone.aliasOf).toBeUndefined();
    expect(undone.handedOver).toBeUndefined();
    expect(undone.profile?.counters['product.viewed']).toBe(1);
    // Its next sign-in hands it over anew: the person has the browser's history.
    await collect([productView(b, 'p3', 'hats', { userId, userIdSignature: signature })]);
    const person = await viewProfile(env, SITE, `user:${userId}`);
    expect(person?.counters['product.viewed']).toBe(2);
    expect(person?.interests['category:shoes']).toBeGreaterThan(0);
  });
});

/**
 * A person signed in from two browsers whose retention deleted them, then failed to forget
 * the browsers (an eviction): its alarm comes back within a minute to finish.
 */
async function retentionStoppedForgetting(): Promise<{ userId: string; browsers: string[] }> {
  const { userId, browsers } = await signedInBrowsers(2);
  const person = profileStub(env, SITE, `user:${userId}`);
  await inactivePastRetention(person);
  vi.spyOn(ProfileDO.prototype, 'forget').mockImplementationOnce(async () => {
    throw new Error('evicted');
  });
  await expect(runDurableObjectAlarm(person)).rejects.toThrow('evicted');
  vi.restoreAllMocks();
  return { userId, browsers };
}

describe('an erasure while retention is still forgetting the merged browsers', () => {
  it('tombstones the browsers retention had not forgotten yet, and unlinks them', async () => {
    const { userId, browsers } = await retentionStoppedForgetting();
    // Before the alarm comes back, the privacy officer erases the person.
    const res = await people(`user:${userId}`, 'DELETE');
    expect(res.status).toBe(200);
    for (const b of browsers) {
      expect(await profileStub(env, SITE, `anon:${b}`).erasedAt()).not.toBeNull();
      expect(await profileStub(env, SITE, `anon:${b}`).aliasOf()).toBeNull();
    }
  }, 20_000);
});

describe('an access request while retention is still forgetting the merged browsers', () => {
  it('answers what the edge still holds of the person: the browsers retention has yet to forget', async () => {
    const { userId, browsers } = await retentionStoppedForgetting();
    // Each browser still names the person.
    for (const b of browsers)
      expect(await profileStub(env, SITE, `anon:${b}`).aliasOf()).toBe(`user:${userId}`);

    const res = await people(`user:${userId}`, 'GET', ADMIN_HEADERS, '&scope=edge');
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { retiring?: { browsers: string[] } };
    expect(answer.retiring?.browsers.sort()).toEqual(browsers.map((b) => `anon:${b}`).sort());
  }, 20_000);
});

describe('erasing a browser whose hand-over to its person is under way', () => {
  it("erases the person it was handed to, with the browser's data", async () => {
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    await collect([productView(b, 'p1', 'shoes')]);
    // The DELETE for the browser reaches its object just after the person asked for the hand-over.
    let erasing: Promise<ErasureResult> | undefined;
    const handOver = ProfileDO.prototype.handOver;
    vi.spyOn(ProfileDO.prototype, 'handOver').mockImplementationOnce(function (
      this: ProfileDO,
      to: PersonKey,
      siteId: string,
      self: PersonKey,
    ) {
      const handed = handOver.call(this, to, siteId, self);
      erasing = this.erase(siteId, self);
      return handed;
    });
    await collect([productView(b, 'p2', 'hats', { userId, userIdSignature: await signed(userId) })]);
    const result = await erasing;
    expect(result?.personKey).toBe(`user:${userId}`);
    expect(result?.anonymousIds).toContain(b);
    expect(await viewProfile(env, SITE, `user:${userId}`)).toBeNull();
    expect(await profileStub(env, SITE, `anon:${b}`).erasedAt()).not.toBeNull();
  });
});

describe('a sign-in with analytics consent only', () => {
  it('links the browser to the person, so erasing the person covers the events it sent before', async () => {
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    const analytics = consentFor('analytics');
    await collect([makeEvent(b, 'page.viewed', { consent: analytics })]);
    await collect([
      makeEvent(b, 'user.signed_in', { consent: analytics, userId, userIdSignature: await signed(userId) }),
    ]);
    expect(await profileStub(env, SITE, `anon:${b}`).aliasOf()).toBe(`user:${userId}`);
    // Linked, not learned from: nothing personal is kept without personalization.
    const person = await viewProfile(env, SITE, `user:${userId}`);
    expect(person?.anonymousIds).toEqual([b]);
    expect(person?.recentActions).toEqual([]);

    expect((await people(`user:${userId}`, 'DELETE')).status).toBe(200);
    const erasure = queue.messages.find(
      (m): m is ErasureMessage => m.kind === 'erasure' && m.personId === `user:${userId}`,
    );
    // Directus deletes the rows of every key the erasure names: the browser's earlier page view among them.
    expect(erasure?.anonymousIds).toEqual([b]);
    expect(await profileStub(env, SITE, `anon:${b}`).erasedAt()).not.toBeNull();
  });
});

describe('a sign-in that withdraws personalization', () => {
  it('links the browser but does not carry what it learned into the person', async () => {
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    // Personalization granted: the browser learns shoes.
    await collect([productView(b, 'p1', 'shoes')]);
    const analytics = consentFor('analytics');
    await collect([
      makeEvent(b, 'consent.updated', {
        consent: analytics,
        properties: { ...analytics, source: 'banner' },
        userId,
        userIdSignature: await signed(userId),
      }),
    ]);
    const person = await viewProfile(env, SITE, `user:${userId}`);
    expect(person?.anonymousIds).toEqual([b]);
    expect(person?.interests['category:shoes']).toBeUndefined();
    expect(person?.recentActions).toEqual([]);
    expect(person?.counters).toEqual({});
  });
});

/** A person who learned shoes on browser B1, and a browser B2 that withdrew personalization since, anonymously. */
async function learnedThenWithdrawnElsewhere(): Promise<{
  userId: string;
  userIdSignature: string;
  b2: string;
  analytics: ConsentState;
}> {
  const userId = `u-${anonId()}`;
  const userIdSignature = await signed(userId);
  const b1 = anonId('b1');
  const b2 = anonId('b2');
  const before = new Date(Date.now() - 60_000).toISOString();
  await collect([
    productView(b1, 'p1', 'shoes', { userId, userIdSignature, timestamp: before }),
    productView(b1, 'p2', 'shoes', { userId, userIdSignature, timestamp: before }),
  ]);
  expect((await viewProfile(env, SITE, `user:${userId}`))?.interests['category:shoes']).toBeGreaterThan(0);
  const analytics = consentFor('analytics');
  await collect([
    makeEvent(b2, 'consent.updated', { consent: analytics, properties: { ...analytics, source: 'banner' } }),
  ]);
  return { userId, userIdSignature, b2, analytics };
}

describe('a sign-in on a browser whose newer choice withdrew personalization', () => {
  it("forgets what the person had learned on their other browsers: the browser's choice is theirs now", async () => {
    const { userId, userIdSignature, b2, analytics } = await learnedThenWithdrawnElsewhere();
    await collect([makeEvent(b2, 'user.signed_in', { userId, userIdSignature, consent: analytics })]);
    const person = await viewProfile(env, SITE, `user:${userId}`);
    expect(person?.consent?.categories.personalization).toBe(false);
    expect(person?.interests).toEqual({});
    expect(person?.recentActions).toEqual([]);
    expect(person?.counters).toEqual({});
    expect(person?.anonymousIds).toContain(b2);
  });

  it('tells the ingest path, so the cleared profile goes downstream though the run grants no personalization', async () => {
    const { userId, userIdSignature, b2, analytics } = await learnedThenWithdrawnElsewhere();
    const signIn = makeEvent(b2, 'user.signed_in', { userId, userIdSignature, consent: analytics });
    const now = new Date().toISOString();
    const result = await ingestProfile(env, SITE, `user:${userId}`, [
      {
        event: signIn,
        enrichment: { receivedAt: now, correctedTimestamp: now },
        personalization: false,
        consent: analytics,
      },
    ]);
    expect(result.personalizationCleared).toBe(true);
    expect(result.changed).toBe(true);
    expect(result.profile.interests).toEqual({});
    expect(result.profile.consent?.categories.personalization).toBe(false);
  });

  it('sends the cleared profile downstream, so Directus forgets the interests too', async () => {
    const { userId, userIdSignature, b2, analytics } = await learnedThenWithdrawnElsewhere();
    queue.messages.splice(0);
    await collect([makeEvent(b2, 'user.signed_in', { userId, userIdSignature, consent: analytics })]);
    const snapshots = queue.messages.filter(
      (m): m is ProfileMessage => m.kind === 'profile' && m.personId === `user:${userId}`,
    );
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]?.profile.interests).toEqual({});
    expect(snapshots[0]?.profile.consent?.categories.personalization).toBe(false);
  });
});

describe('an erasure that fails part-way', () => {
  it('is finished by a retried DELETE: every merged browser tombstoned, every id sent downstream', async () => {
    const userId = `u-${anonId()}`;
    const signature = await signed(userId);
    const browsers = [anonId('b'), anonId('b')];
    await collect(browsers.map((b) => productView(b, 'p1', 'shoes', { userId, userIdSignature: signature })));
    // The first browser's object is unavailable during the first DELETE.
    vi.spyOn(ProfileDO.prototype, 'tombstone').mockRejectedValueOnce(new Error('object unavailable'));
    const failed = await people(`user:${userId}`, 'DELETE');
    expect(failed.status).toBeGreaterThanOrEqual(500);
    vi.restoreAllMocks();
    queue.restart();

    const retried = await people(`user:${userId}`, 'DELETE');
    expect(retried.status).toBe(200);
    for (const b of browsers) {
      expect(await profileStub(env, SITE, `anon:${b}`).erasedAt()).not.toBeNull();
      // A later anonymous event of that browser creates nobody.
      await collect([productView(b, 'p2', 'hats')]);
    }
    expect(await viewProfile(env, SITE, `user:${userId}`)).toBeNull();
    const erasure = queue.messages.find((m): m is ErasureMessage => m.kind === 'erasure');
    expect(erasure?.anonymousIds.toSorted()).toEqual(browsers.toSorted());
  });
});

describe("a sign-in naming someone else's browser", () => {
  it('does not take the browser, its history or its later events from the person it belongs to', async () => {
    const owner = `u-${anonId()}`;
    const other = `u-${anonId()}`;
    const browser = anonId('b');
    await collect([productView(browser, 'p1', 'shoes')]);
    await collect([
      productView(browser, 'p2', 'shoes', { userId: owner, userIdSignature: await signed(owner) }),
    ]);
    expect(await profileStub(env, SITE, `anon:${browser}`).aliasOf()).toBe(`user:${owner}`);

    // Another signed-in user sends their own (validly signed) event under that browser's id.
    const warn = vi.spyOn(console, 'warn');
    const res = await collect([
      productView(browser, 'p3', 'hats', { userId: other, userIdSignature: await signed(other) }),
    ]);
    expect(await res.json()).toMatchObject({ accepted: 1 });
    expect(await profileStub(env, SITE, `anon:${browser}`).aliasOf()).toBe(`user:${owner}`);
    const theirs = await viewProfile(env, SITE, `user:${other}`);
    expect(theirs?.anonymousIds).toEqual([]);
    expect(theirs?.interests['category:shoes']).toBeUndefined();
    // The refusal is logged for the operator, naming neither person nor browser.
    const refusals = warn.mock.calls
      .map(([line]) => String(line))
      .filter((l) => l.includes('browser_not_linked'));
    expect(refusals.map((l) => JSON.parse(l))).toEqual([
      {
        level: 'warn',
        msg: 'identity.browser_not_linked',
        siteId: SITE,
        reason: 'linked_to_another_person_or_erased',
      },
    ]);
    warn.mockRestore();

    // The browser's next anonymous event still goes to its owner.
    await collect([productView(browser, 'p4', 'garden')]);
    expect((await viewProfile(env, SITE, `user:${owner}`))?.interests['category:garden']).toBeGreaterThan(0);
    expect((await viewProfile(env, SITE, `user:${other}`))?.interests['category:garden']).toBeUndefined();
  });

  it('does not link an erased browser to the next person signing in on it', async () => {
    const browser = anonId('b');
    await collect([productView(browser, 'p1', 'shoes')]);
    expect((await people(`anon:${browser}`, 'DELETE')).status).toBe(200);
    const userId = `u-${anonId()}`;
    await collect([productView(browser, 'p2', 'hats', { userId, userIdSignature: await signed(userId) })]);
    expect((await viewProfile(env, SITE, `user:${userId}`))?.anonymousIds).toEqual([]);
    expect(await profileStub(env, SITE, `anon:${browser}`).aliasOf()).toBeNull();
  });
});

describe('a person signed in from more browsers than a profile links', () => {
  it('keeps every linked browser, so erasing the person covers the first one too', async () => {
    const userId = `u-${anonId()}`;
    const signature = await signed(userId);
    const browsers = Array.from({ length: MAX_BROWSERS }, () => anonId('b'));
    // In batches of the most events a batch may hold, under limits that let them through.
    const roomy = envWithSites([
      {
        id: SITE,
        writeKey: WRITE_KEY,
        allowedOrigins: [ORIGIN],
        settings: { rateLimit: { ipBurst: 1000, anonymousBurst: 1000 } },
      },
    ]);
    for (let i = 0; i < browsers.length; i += 100) {
      const batch = browsers
        .slice(i, i + 100)
        .map((b) => productView(b, 'p1', 'shoes', { userId, userIdSignature: signature }));
      expect((await collect(batch, { env: roomy })).status).toBe(200);
    }
    // One more browser, with a history of its own, signs in as the same person.
    const extra = anonId('extra');
    await collect([productView(extra, 'p2', 'hats')]);
    const res = await collect([productView(extra, 'p3', 'hats', { userId, userIdSignature: signature })]);
    expect(await res.json()).toMatchObject({ accepted: 1 });
    const person = await viewProfile(env, SITE, `user:${userId}`);
    expect(person?.anonymousIds).toHaveLength(MAX_BROWSERS);
    expect(person?.anonymousIds).toContain(browsers[0]);
    // The extra browser is not linked: its history stays its own.
    expect(await profileStub(env, SITE, `anon:${extra}`).aliasOf()).toBeNull();

    expect((await people(`user:${userId}`, 'DELETE')).status).toBe(200);
    expect(await profileStub(env, SITE, `anon:${browsers[0]}`).erasedAt()).not.toBeNull();
    const erasure = queue.messages.find((m): m is ErasureMessage => m.kind === 'erasure');
    expect(erasure?.anonymousIds).toContain(browsers[0]);
  }, 60_000);
});

describe('an erasure whose message could not be queued', () => {
  /** A browser signed in as a person (analytics only: Directus keeps no people row to recover the keys from). */
  async function signedInBrowser(): Promise<{ userId: string; browser: string }> {
    const userId = `u-${anonId()}`;
    const browser = anonId('b');
    await collect([
      productView(browser, 'p1', 'shoes', {
        userId,
        userIdSignature: await signed(userId),
        context: { consent: consentFor('analytics') },
      }),
    ]);
    // The ingest's own send (after its response) is done before the queue fails.
    await vi.waitFor(() => expect(queue.messages.some((m) => m.kind === 'events')).toBe(true));
    return { userId, browser };
  }

  /** DELETE `key` while the queue refuses (its send and the send's one retry), then again; returns the retry's erasure message. */
  async function eraseWithRetry(key: PersonKey): Promise<ErasureMessage | undefined> {
    const refuse = async () => {
      throw new Error('queue unavailable');
    };
    vi.mocked(env.EVENTS.sendBatch).mockImplementationOnce(refuse).mockImplementationOnce(refuse);
    const failed = await people(key, 'DELETE');
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).toBe('5');
    expect(((await failed.json()) as { error: { code: string } }).error.code).toBe('queue_unavailable');
    queue.restart();
    const retried = await people(key, 'DELETE');
    expect(retried.status).toBe(200);
    return queue.messages.find((m): m is ErasureMessage => m.kind === 'erasure');
  }

  it('a retried DELETE of the browser erases its person downstream, not only the browser', async () => {
    const { userId, browser } = await signedInBrowser();
    const erasure = await eraseWithRetry(`anon:${browser}`);
    expect(erasure?.personId).toBe(`user:${userId}`);
    expect(erasure?.userId).toBe(userId);
    expect(erasure?.anonymousIds).toEqual([browser]);
  });

  it('a retried DELETE of the person still names every merged browser', async () => {
    const { userId, browser } = await signedInBrowser();
    const erasure = await eraseWithRetry(`user:${userId}`);
    expect(erasure?.personId).toBe(`user:${userId}`);
    expect(erasure?.anonymousIds).toEqual([browser]);
    // What the tombstone keeps for that is part of an access request's answer.
    const held = (await (await people(`user:${userId}`, 'GET', ADMIN_HEADERS, '&scope=edge')).json()) as {
      erasedWith?: { anonymousIds: string[] };
    };
    expect(held.erasedWith?.anonymousIds).toEqual([browser]);
  });
});

describe('retention alarm and the queue', () => {
  it('a failed erasure send is retried with the alarm, not lost', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const stub = profileStub(env, SITE, `anon:${a}`);
    await inactivePastRetention(stub);

    // The queue is briefly unavailable when the alarm fires (the send and its retry): the handler fails …
    const refuse = async () => {
      throw new Error('queue unavailable');
    };
    vi.mocked(env.EVENTS.sendBatch).mockImplementationOnce(refuse).mockImplementationOnce(refuse);
    await expect(runDurableObjectAlarm(stub)).rejects.toThrow('queue messages not sent');
    // … and the runtime runs it again (alarms are retried when their handler throws).
    await runInDurableObject(stub, (instance: ProfileDO) => instance.alarm());

    const erasures = queue.messages.filter(
      (m): m is ErasureMessage => m.kind === 'erasure' && m.personId === `anon:${a}`,
    );
    expect(erasures).toHaveLength(1);
    expect(await viewProfile(env, SITE, `anon:${a}`)).toBeNull();
  });

  it('a send that never settles fails the alarm within the send budget, leaving the person as they were and their turn free', {
    timeout: QUEUE_SEND_BUDGET_MS * 3,
  }, async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const stub = profileStub(env, SITE, `anon:${a}`);
    await inactivePastRetention(stub);

    // The queue takes the send and never answers (its service stuck) …
    vi.mocked(env.EVENTS.send).mockImplementationOnce(stuckQueueCall);
    vi.mocked(env.EVENTS.sendBatch).mockImplementationOnce(stuckQueueCall);
    await expect(runDurableObjectAlarm(stub)).rejects.toThrow('queue messages not sent');
    // … the alarm gives up on it, leaving the person as they were, and their turn free:
    // a batch of theirs arriving now is taken (it waited behind the alarm).
    expect((await collect([productView(a, 'p2', 'shoes')])).status).toBe(200);
    expect(await viewProfile(env, SITE, `anon:${a}`)).not.toBeNull();
  });
});

/** A signed-in person, and the consent choices they make on their browsers, as the banner sends them. */
async function personChoosing(): Promise<{
  userId: string;
  choose: (anonymousId: string, consent: ConsentState, extra?: Partial<CustomerAction>) => CustomerAction;
}> {
  const userId = `u-${anonId()}`;
  const userIdSignature = await signed(userId);
  const choose = (anonymousId: string, consent: ConsentState, extra: Partial<CustomerAction> = {}) =>
    makeEvent(anonymousId, 'consent.updated', {
      userId,
      userIdSignature,
      consent,
      properties: { ...consent, source: 'banner' },
      ...extra,
    });
  return { userId, choose };
}

describe('events arriving out of order', () => {
  it('an older event flushed late (an offline queue) moves firstSeen back to it', async () => {
    const a = anonId();
    await collect([productView(a, 'p1', 'shoes')]);
    const firstSeen = (await viewProfile(env, SITE, `anon:${a}`))?.firstSeen ?? '';
    const twoHoursAgo = Date.now() - 2 * 60 * 60 * 1000;
    await collect([productView(a, 'p0', 'hats', { timestamp: new Date(twoHoursAgo).toISOString() })]);
    const view = await viewProfile(env, SITE, `anon:${a}`);
    expect(view?.counters['product.viewed']).toBe(2);
    expect(Date.parse(view?.firstSeen ?? '')).toBeLessThan(Date.parse(firstSeen));
    expect(Math.abs(Date.parse(view?.firstSeen ?? '') - twoHoursAgo)).toBeLessThan(5_000);
  });

  it('an older consent choice flushed late is kept as proof, but the newer choice stays in force', async () => {
    const { userId, choose: choice } = await personChoosing();
    const deviceA = anonId('devA');
    const deviceB = anonId('devB');
    const grant = consentFor('analytics', 'personalization', 'marketing');
    const withdrawal = consentFor('analytics');
    // Device B withdraws personalization and marketing now.
    const withdrawn = choice(deviceB, withdrawal);
    expect((await collect([withdrawn])).status).toBe(200);
    // Device A's grant, made an hour before, waited in its offline queue and arrives now.
    const hourAgo = Date.now() - 3_600_000;
    const late = choice(deviceA, grant, { timestamp: new Date(hourAgo).toISOString() });
    expect((await collect([late])).status).toBe(200);

    const held = await exportProfile(env, SITE, `user:${userId}`);
    expect(held.profile?.consent?.eventId).toBe(withdrawn.id);
    expect(held.profile?.consent?.state.categories.personalization).toBe(false);
    // The record says when the choice was made as well as when it arrived.
    expect(Date.parse(held.profile?.consent?.chosenAt ?? '')).toBeGreaterThan(hourAgo + 1_800_000);
    // The late grant taught the profile nothing.
    expect(held.profile?.recentActions).toEqual([]);
    // It still went downstream, as the proof of what the person chose then.
    const proofs = queue.messages.filter((m): m is ConsentMessage => m.kind === 'consent');
    expect(proofs.map((m) => m.eventId)).toEqual([withdrawn.id, late.id]);

    // An event without consent (a server producer) goes by the withdrawal: nothing is learned.
    const tracked = await segment('/v1/track', {
      userId,
      event: 'Product Viewed',
      messageId: `m-${anonId()}`,
      properties: { product_id: 'p1', category: 'shoes' },
    });
    expect(tracked.status).toBe(200);
    expect((await viewProfile(env, SITE, `user:${userId}`))?.interests).toEqual({});

    // The ingest path learns which consent events are only history.
    const older = choice(deviceA, grant, { timestamp: new Date(hourAgo + 1000).toISOString() });
    const result = await ingestProfile(env, SITE, `user:${userId}`, [
      {
        event: older,
        enrichment: { receivedAt: new Date().toISOString(), correctedTimestamp: older.timestamp },
        personalization: true,
        consent: grant,
      },
    ]);
    expect(result.accepted).toEqual([older.id]);
    expect(result.supersededConsents).toEqual([older.id]);
    expect(result.profile.consent?.categories.personalization).toBe(false);
  });

  it('events made before a withdrawal and flushed late follow the withdrawal: nothing learned, no sink it turned off', async () => {
    const { userId, choose } = await personChoosing();
    const userIdSignature = await signed(userId);
    const laptop = anonId('laptop');
    const phone = anonId('phone');
    const everything = consentFor('analytics', 'personalization', 'marketing');
    const twoHoursAgo = Date.now() - 2 * 3_600_000;
    await collect([choose(laptop, everything, { timestamp: new Date(twoHoursAgo).toISOString() })]);
    // On the phone, the person now withdraws personalization and marketing.
    await collect([choose(phone, consentFor('analytics'))]);
    queue.messages.length = 0;
    // The laptop's product view, made an hour ago under its grant, waited offline and arrives now.
    const late = productView(laptop, 'p1', 'shoes', {
      userId,
      userIdSignature,
      timestamp: new Date(Date.now() - 3_600_000).toISOString(),
      context: { consent: everything },
    });
    expect((await collect([late])).status).toBe(200);
    // Before, its own claim counted: the profile learned from it after the withdrawal.
    const held = await exportProfile(env, SITE, `user:${userId}`);
    expect(held.profile?.recentActions).toEqual([]);
    expect(held.profile?.interests).toEqual({});
    // It is logged under analytics, which the person still grants, and under nothing else.
    const logged = queue.messages.flatMap((m) => (m.kind === 'events' ? [m] : []));
    expect(logged.map((m) => [m.events.map((e) => e.event.id), m.purposes])).toEqual([
      [[late.id], ['analytics']],
    ]);
    expect(queue.messages.some((m) => m.kind === 'profile')).toBe(false);
  });

  it("a withdrawal on one of a signed-in person's browsers holds on the others, whose banners still claim the old grant, until they grant again", async () => {
    const { userId, choose } = await personChoosing();
    const userIdSignature = await signed(userId);
    const laptop = anonId('laptop');
    const phone = anonId('phone');
    const everything = consentFor('analytics', 'personalization', 'marketing');
    await collect([choose(laptop, everything, { timestamp: new Date(Date.now() - 60_000).toISOString() })]);
    // On the phone, the person withdraws personalization and marketing.
    await collect([choose(phone, consentFor('analytics'))]);
    queue.messages.length = 0;
    // The laptop's banner never saw that choice: its next views still claim everything.
    const after = productView(laptop, 'p2', 'hats', {
      userId,
      userIdSignature,
      context: { consent: everything },
    });
    expect((await collect([after])).status).toBe(200);
    const held = await exportProfile(env, SITE, `user:${userId}`);
    expect(held.profile?.consent?.state.categories).toMatchObject({
      personalization: false,
      marketing: false,
    });
    expect(held.profile?.interests).toEqual({});
    expect(held.profile?.recentActions).toEqual([]);
    const logged = queue.messages.flatMap((m) => (m.kind === 'events' ? [m] : []));
    expect(logged.map((m) => [m.events.map((e) => e.event.id), m.purposes])).toEqual([
      [[after.id], ['analytics']],
    ]);

    // Granting again on the laptop is a newer choice: from then on its views count.
    await collect([
      choose(laptop, everything),
      productView(laptop, 'p3', 'hats', { userId, userIdSignature, context: { consent: everything } }),
    ]);
    expect(Object.keys((await viewProfile(env, SITE, `user:${userId}`))?.interests ?? {})).toContain(
      'category:hats',
    );
  });

  it('a sign-in made before a refusal of everything and flushed late still links the browser, and is not learned from', async () => {
    const { userId, choose } = await personChoosing();
    const userIdSignature = await signed(userId);
    const laptop = anonId('laptop');
    const phone = anonId('phone');
    await collect([productView(laptop, 'p1', 'shoes')]);
    await collect([
      choose(phone, consentFor(), { timestamp: new Date(Date.now() - 3_600_000).toISOString() }),
    ]);
    // The laptop's sign-in, made two hours ago while offline, arrives now.
    const signIn = makeEvent(laptop, 'user.signed_in', {
      userId,
      userIdSignature,
      timestamp: new Date(Date.now() - 2 * 3_600_000).toISOString(),
    });
    expect(await (await collect([signIn])).json()).toMatchObject({ accepted: 0 });
    // Its analytics-logged anonymous view is the person's to erase: the browser is linked.
    expect(await profileStub(env, SITE, `anon:${laptop}`).aliasOf()).toBe(`user:${userId}`);
    expect((await exportProfile(env, SITE, `user:${userId}`)).profile?.interests).toEqual({});
  });

  it('at a sign-in, the person’s newer choice stands over the browser’s older one that reached the Worker before it', async () => {
    const { userId, choose } = await personChoosing();
    const userIdSignature = await signed(userId);
    const browser = anonId('browser');
    const laptop = anonId('laptop');
    // Anonymous on the browser: analytics and personalization, no marketing.
    await collect([
      makeEvent(browser, 'consent.updated', {
        consent: consentFor('analytics', 'personalization'),
        properties: { ...consentFor('analytics', 'personalization'), source: 'banner' },
      }),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    // Later, signed in on the laptop, the person grants everything.
    await collect([choose(laptop, consentFor('analytics', 'personalization', 'marketing'))]);
    // Now they sign in on the browser: before, its older choice took marketing back from them.
    await collect([
      makeEvent(browser, 'user.signed_in', {
        userId,
        userIdSignature,
        consent: consentFor('analytics', 'personalization'),
      }),
    ]);
    const held = await exportProfile(env, SITE, `user:${userId}`);
    expect(held.profile?.consent?.state.categories).toMatchObject({ personalization: true, marketing: true });
  });

  it('an older choice flushed late that withdraws one purpose and grants another narrows the newer choice, never widens it', async () => {
    const { userId, choose } = await personChoosing();
    const laptop = anonId('laptop');
    const phone = anonId('phone');
    const newer = consentFor('analytics');
    const older = consentFor('personalization');
    await collect([choose(laptop, newer)]);
    const late = choose(phone, older, { timestamp: new Date(Date.now() - 3_600_000).toISOString() });
    expect((await collect([late])).status).toBe(200);
    const held = await exportProfile(env, SITE, `user:${userId}`);
    // Its withdrawal of analytics counts; its grant of personalization does not.
    expect(held.profile?.consent?.state.categories).toMatchObject({
      analytics: false,
      personalization: false,
      marketing: false,
    });
    expect(held.profile?.consent?.eventId).toBe(late.id);
  });

  it('a withdrawal from a device whose clock is days slow (beyond the skew corrected) is not outranked by an earlier grant', async () => {
    const { userId, choose } = await personChoosing();
    const phone = anonId('phone');
    const laptop = anonId('laptop');
    // The phone grants everything, with a right clock.
    await collect([choose(phone, consentFor('analytics', 'personalization', 'marketing'))]);
    // The laptop's clock is two days slow: its batch's sentAt too, so nothing corrects it.
    const slow = new Date(Date.now() - 2 * 86_400_000).toISOString();
    const withdrawn = choose(laptop, consentFor('analytics'), { timestamp: slow });
    expect((await collect([withdrawn], { sentAt: slow })).status).toBe(200);
    const held = await exportProfile(env, SITE, `user:${userId}`);
    expect(held.profile?.consent?.eventId).toBe(withdrawn.id);
    expect(held.profile?.consent?.state.categories).toMatchObject({
      personalization: false,
      marketing: false,
    });
  });
});
