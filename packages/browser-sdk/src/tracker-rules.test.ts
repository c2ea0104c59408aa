/**
 * The tracker's rules where they are easy to get wrong: retries under Retry-After, a new
 * policy version, GPC, the outbox bound, other tabs, input the wire would refuse. The browser is
 * faked as in attune.test.ts (a recording store and a scripted fetch).
 */
import { parseCollectBody } from '@attune/shared-schema';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type AttuneError, type AttuneOptions, createAttune } from './attune.ts';
import { emptyStorageLog, recordingPersistence, type StorageLog } from './store/recording-persistence.ts';
import type { VisitorRecord } from './store/store.ts';

interface ConsentClaim {
  categories: Record<string, boolean>;
  policyVersion: string;
}

interface Answer {
  status: number;
  retryAfter?: string;
}

let storage: StorageLog;
let posts: { at: number; events: Record<string, unknown>[] }[];
let answers: Answer[];
let configAnswer: unknown;
/** /v1/config never answers (a stalled connection). */
let configHangs: boolean;
/** How long /v1/config takes to answer (ms). */
let configDelay: number;
/** The page's window, as far as its event listeners go. */
let page: EventTarget;

const names = () => posts.flatMap((p) => p.events.map((e) => String(e.name)));
const settle = () => vi.advanceTimersByTimeAsync(0);

function tracker(options: Partial<AttuneOptions> = {}, initial?: VisitorRecord) {
  return createAttune(
    { endpoint: 'https://edge.test', writeKey: 'pk_test', autoPageView: false, ...options },
    recordingPersistence(storage, initial),
  );
}

const grantedV1: VisitorRecord = {
  anonymousId: 'anon-1',
  consent: {
    categories: { necessary: true, analytics: true, personalization: false, marketing: false },
    policyVersion: '1',
  },
};

/** A refusal of everything under policy 1, as a tab that withdrew saves it (no ids). */
const refused = {
  categories: { necessary: true, analytics: false, personalization: false, marketing: false },
  policyVersion: '1',
};

const configV2 = {
  policyVersion: '2',
  categories: ['necessary', 'analytics', 'personalization', 'marketing'].map((key, i) => ({
    key,
    label: key,
    description: '',
    required: i === 0,
    enabled: true,
    default: i === 0,
  })),
};

beforeEach(() => {
  posts = [];
  answers = [];
  storage = emptyStorageLog();
  configAnswer = undefined;
  configHangs = false;
  configDelay = 0;
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(Date.parse('2026-11-26T10:00:00Z'));
  page = new EventTarget();
  vi.stubGlobal('addEventListener', page.addEventListener.bind(page));
  vi.stubGlobal('document', { referrer: '', title: 'Shop', hidden: false });
  vi.stubGlobal('location', { href: 'https://shop.test/p/1', pathname: '/p/1', search: '' });
  vi.stubGlobal('navigator', { onLine: true, language: 'en-GB' });
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      if (url.includes('/v1/config') && configHangs) return new Promise<Response>(() => {});
      if (url.includes('/v1/config') && configDelay > 0)
        await new Promise((resolve) => setTimeout(resolve, configDelay));
      if (url.includes('/v1/config'))
        return configAnswer ? Response.json(configAnswer) : new Response('{}', { status: 404 });
      if (!url.endsWith('/v1/collect')) return new Response('{}', { status: 404 });
      const body = String(init?.body);
      const events = (JSON.parse(body) as { batch: Record<string, unknown>[] }).batch;
      posts.push({ at: Date.now(), events });
      const parsed = parseCollectBody(body);
      const answer = answers.shift() ?? { status: 200 };
      if (answer.status === 200 && parsed.ok && parsed.rejected.length)
        return Response.json({ accepted: 0, rejected: parsed.rejected }, { status: 207 });
      return Response.json(
        { accepted: events.length, rejected: [] },
        { status: answer.status, headers: answer.retryAfter ? { 'retry-after': answer.retryAfter } : {} },
      );
    }),
  );
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('retries', () => {
  it('honours Retry-After even when an event was tracked while the refused request was in flight', async () => {
    answers = [{ status: 429, retryAfter: '30' }];
    const attune = tracker({ flushInterval: 5000 });
    attune.consent.set({ analytics: true });
    // The interval (or flushAt) sends a batch; the page keeps tracking while it is in flight.
    void attune.flush();
    attune.track('product.viewed', { productId: 'p1' });
    await settle();
    expect(posts).toHaveLength(1);
    // The Worker asked for 30 s: nothing may be tried before then.
    await vi.advanceTimersByTimeAsync(29_000);
    expect(posts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(posts).toHaveLength(2);
    expect(names()).toEqual(['consent.updated', 'consent.updated', 'product.viewed']);
  });
});

describe('consent asked again under a new policy version', () => {
  it('a refusal under the new policy wipes what the earlier grant stored', async () => {
    configAnswer = configV2;
    // Events of earlier pages, still in IndexedDB (say the Worker was down).
    storage.orphans = [
      { id: '01JDZZZZZZZZZZZZZZZZZZZZZ1', json: '{"id":"01JDZZZZZZZZZZZZZZZZZZZZZ1"}', bytes: 35 },
    ];
    answers = Array.from({ length: 10 }, () => ({ status: 503 }));
    const attune = tracker({}, grantedV1);
    await settle();
    expect(attune.consent.get()).toMatchObject({ decided: false, policyVersion: '2' });
    expect(storage.storedEvents.size).toBe(1);
    attune.consent.set({ analytics: false, personalization: false, marketing: false }, 'banner');
    await settle();
    // The visitor refused: no event (with their ids) may stay in storage.
    expect(storage.writes).toContain('wipe');
    expect(storage.storedEvents.size).toBe(0);
  });

  it('what an earlier page stored is forgotten once delivered while the grant is set aside, not sent again later', async () => {
    configAnswer = configV2;
    storage.orphans = [
      { id: '01JDZZZZZZZZZZZZZZZZZZZZZ1', json: '{"id":"01JDZZZZZZZZZZZZZZZZZZZZZ1"}', bytes: 35 },
    ];
    const attune = tracker({}, grantedV1);
    await settle();
    await attune.flush();
    expect(attune.consent.get()).toMatchObject({ decided: false, policyVersion: '2' });
    expect(posts.flatMap((p) => p.events.map((e) => e.id))).toEqual(['01JDZZZZZZZZZZZZZZZZZZZZZ1']);
    // Delivered: IndexedDB must not hand it to the next page once the person grants again.
    expect(storage.storedEvents.size).toBe(0);
  });

  it('a TCF visitor is not left undecided forever once the policy version changes', async () => {
    configAnswer = configV2;
    // A loaded CMP answers addEventListener at once with the person's stored TC string.
    vi.stubGlobal(
      '__tcfapi',
      (_command: string, _version: number, callback: (data: unknown, success: boolean) => void) =>
        callback(
          { eventStatus: 'tcloaded', gdprApplies: true, purpose: { consents: { 1: true, 8: true } } },
          true,
        ),
    );
    const attune = tracker({ tcf: true }, grantedV1);
    await settle();
    attune.track('product.viewed', { productId: 'p1' });
    await attune.flush();
    // The CMP's choice (analytics) holds under the new policy: the event is sent.
    expect(attune.consent.get()).toMatchObject({ decided: true, policyVersion: '2' });
    expect(names()).toContain('product.viewed');
  });
});

describe('a stored choice before /v1/config has confirmed its policy version', () => {
  it('sends and stores nothing of a page whose stored grant the new policy sets aside', async () => {
    configAnswer = configV2;
    const attune = tracker({ autoPageView: true }, grantedV1);
    attune.track('product.viewed', { productId: 'p1' });
    await vi.advanceTimersByTimeAsync(10_000);
    await attune.flush();
    expect(attune.consent.get()).toMatchObject({ decided: false, policyVersion: '2' });
    expect(names()).toEqual([]);
    expect(storage.storedEvents.size).toBe(0);
    // Chosen again under the new policy: the page's events go, stamped with it.
    attune.consent.set({ analytics: true }, 'banner');
    await attune.flush();
    expect(names()).toEqual(['page.viewed', 'product.viewed', 'consent.updated']);
    for (const e of posts.flatMap((p) => p.events))
      expect((e.context as { consent: ConsentClaim }).consent.policyVersion).toBe('2');
  });

  it('tells Google’s tags nothing is granted until the version is confirmed, so a grant the new policy sets aside never reaches them', async () => {
    const gtagCalls: unknown[][] = [];
    vi.stubGlobal('gtag', (...args: unknown[]) => gtagCalls.push(args));
    const marketingV1: VisitorRecord = {
      anonymousId: 'anon-1',
      consent: { categories: { ...grantedV1.consent?.categories, marketing: true }, policyVersion: '1' },
    };
    const signals = (ads: string) => ({
      ad_storage: ads,
      ad_user_data: ads,
      ad_personalization: ads,
      analytics_storage: 'denied',
      personalization_storage: 'denied',
    });
    configDelay = 100;
    configAnswer = configV2;
    tracker({ googleConsentMode: true }, marketingV1);
    // Before, the default was the stored grant: ads granted until /v1/config answered.
    expect(gtagCalls).toEqual([['consent', 'default', { ...signals('denied'), wait_for_update: 500 }]]);
    await vi.advanceTimersByTimeAsync(100);
    expect(gtagCalls.slice(1)).toEqual([['consent', 'update', signals('denied')]]);

    // The same version confirmed: the stored grant follows as the update Google's tags waited for.
    gtagCalls.length = 0;
    configAnswer = { ...configV2, policyVersion: '1' };
    tracker({ googleConsentMode: true }, marketingV1);
    await vi.advanceTimersByTimeAsync(100);
    expect(gtagCalls).toEqual([
      ['consent', 'default', { ...signals('denied'), wait_for_update: 500 }],
      ['consent', 'update', { ...signals('granted'), analytics_storage: 'granted' }],
    ]);
  });

  it('sends the page’s events once /v1/config confirms the version, or cannot be read', async () => {
    configAnswer = { ...configV2, policyVersion: '1' };
    const confirmed = tracker({ autoPageView: true }, grantedV1);
    await confirmed.flush();
    expect(names()).toEqual(['page.viewed']);
    posts = [];
    configAnswer = undefined;
    const unreadable = tracker({ autoPageView: true }, grantedV1);
    await settle();
    await unreadable.flush();
    expect(names()).toEqual(['page.viewed']);
  });

  it('a page left before /v1/config answers still hands over what it recorded, under the stored choice', async () => {
    configHangs = true;
    const attune = tracker({ autoPageView: true }, grantedV1);
    attune.track('product.clicked', { productId: 'p1' });
    page.dispatchEvent(new Event('pagehide'));
    await settle();
    expect(names()).toEqual(['page.viewed', 'product.clicked']);
  });

  it('flush() waits a few seconds at most for a /v1/config that never answers; what it held goes as the page is hidden', async () => {
    configHangs = true;
    const attune = tracker({ autoPageView: true }, grantedV1);
    let done = false;
    void attune.flush().then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(3000);
    expect(done).toBe(true);
    expect(names()).toEqual([]);
    vi.stubGlobal('document', { referrer: '', title: 'Shop', hidden: true });
    page.dispatchEvent(new Event('visibilitychange'));
    await settle();
    expect(names()).toEqual(['page.viewed']);
  });

  it('a /v1/config slower than flush() waits for is still applied when it answers, and the banner gets it', async () => {
    configAnswer = configV2;
    configDelay = 5000;
    const attune = tracker({ autoPageView: true }, grantedV1);
    const banner = attune.consent.config();
    const flushed = attune.flush();
    await vi.advanceTimersByTimeAsync(5000);
    await flushed;
    expect((await banner).policyVersion).toBe('2');
    expect(attune.consent.get()).toMatchObject({ decided: false, policyVersion: '2' });
    await attune.flush();
    expect(names()).toEqual([]);
  });

  it('a tab switched away and back during the check hands over what it held, and holds what comes after', async () => {
    configAnswer = configV2;
    configDelay = 2500;
    const attune = tracker({ autoPageView: true }, grantedV1);
    await vi.advanceTimersByTimeAsync(500);
    vi.stubGlobal('document', { referrer: '', title: 'Shop', hidden: true });
    page.dispatchEvent(new Event('visibilitychange'));
    vi.stubGlobal('document', { referrer: '', title: 'Shop', hidden: false });
    await vi.advanceTimersByTimeAsync(1000);
    attune.track('product.viewed', { productId: 'p1' });
    await vi.advanceTimersByTimeAsync(10_000);
    await attune.flush();
    // The page view went as the tab was hidden (the one case left); the later view waits for a choice under version 2.
    expect(names()).toEqual(['page.viewed']);
    expect(attune.consent.get()).toMatchObject({ decided: false, policyVersion: '2' });
  });

  it('a sign-out during the check, then a new policy version: the leaving person’s events never go under the next person’s choice', async () => {
    configAnswer = configV2;
    configDelay = 1000;
    const alice: VisitorRecord = { ...grantedV1, userId: 'alice', userIdSignature: 'a'.repeat(64) };
    const attune = tracker({ autoPageView: true }, alice);
    attune.track('user.signed_out');
    attune.reset();
    await vi.advanceTimersByTimeAsync(1000);
    attune.consent.set({ analytics: true }, 'banner');
    await attune.flush();
    for (const e of posts.flatMap((p) => p.events)) {
      const claim = (e.context as { consent: ConsentClaim }).consent;
      if (e.userId === 'alice') expect(claim.policyVersion).toBe('1');
    }
  });

  it('a /v1/config that breaks the check (categories an object with its own every) is one that cannot be read', async () => {
    configAnswer = { policyVersion: '1', categories: { every: 1 } };
    const attune = tracker({ autoPageView: true }, grantedV1);
    await settle();
    await attune.flush();
    expect(names()).toEqual(['page.viewed']);
  });

  it('a sign-out while the stored choice is checked keeps the leaving person’s events, sent once it stands', async () => {
    configHangs = true;
    const attune = tracker({ autoPageView: true }, grantedV1);
    attune.track('user.signed_out');
    attune.reset();
    page.dispatchEvent(new Event('pagehide'));
    await settle();
    expect(names()).toEqual(['page.viewed', 'user.signed_out']);
  });
});

describe('reset()', () => {
  it('a tab whose grant was set aside does not write its ids beside another tab’s refusal', async () => {
    configAnswer = configV2;
    const attune = tracker({}, grantedV1);
    await settle();
    // Another tab, on the new policy, refused everything: saved without ids; its storage event is still on its way.
    storage.saved.push({ consent: { ...refused, policyVersion: '2' } });
    attune.track('product.viewed', { productId: 'p1' });
    await settle();
    expect(storage.saved.at(-1)?.anonymousId).toBeUndefined();
  });

  const aliceV1: VisitorRecord = {
    ...grantedV1,
    anonymousId: 'anon-alice',
    userId: 'alice',
    userIdSignature: 'a'.repeat(64),
  };

  it('a sign-out while a new policy has set the grant aside is not undone by the next page', async () => {
    configAnswer = configV2;
    const first = tracker({}, aliceV1);
    await settle();
    first.reset();
    await settle();
    const record = storage.saved.at(-1);
    expect(record?.userId).toBeUndefined();
    expect(record?.anonymousId).toBe(first.anonymousId());
    expect(record?.anonymousId).not.toBe('anon-alice');
    // The next person on this browser opens a page and grants under the new policy.
    posts = [];
    const next = tracker({ autoPageView: true }, record);
    await settle();
    next.consent.set({ analytics: true }, 'banner');
    await next.flush();
    const sent = posts.flatMap((p) => p.events);
    expect(sent.map((e) => e.name)).toEqual(['page.viewed', 'consent.updated']);
    for (const e of sent) {
      expect(e.userId).toBeUndefined();
      expect(e.anonymousId).not.toBe('anon-alice');
    }
  });

  it('drops the events of the person leaving that waited for a choice: the next person’s grant does not send them', async () => {
    const attune = tracker();
    attune.identify('alice', { email: 'alice@example.com' }, { signature: 'a'.repeat(64) });
    attune.track('product.viewed', { productId: 'p-secret' });
    attune.reset();
    attune.track('product.viewed', { productId: 'p-bob' });
    attune.consent.set({ analytics: true }, 'banner');
    await attune.flush();
    const sent = posts.flatMap((p) => p.events);
    expect(sent.map((e) => e.name)).toEqual(['product.viewed', 'consent.updated']);
    expect(sent[0]?.properties).toEqual({ productId: 'p-bob' });
    expect(sent.some((e) => e.userId === 'alice')).toBe(false);
  });

  it('anonymousId() names the id events carry, and a new one after reset()', async () => {
    const attune = tracker({}, grantedV1);
    expect(attune.anonymousId()).toBe('anon-1');
    attune.reset();
    attune.track('product.viewed', { productId: 'p1' });
    await settle();
    await attune.flush();
    const sent = posts.flatMap((p) => p.events);
    expect(sent.map((e) => e.anonymousId)).toEqual([attune.anonymousId()]);
    expect(attune.anonymousId()).not.toBe('anon-1');
  });
});

describe('a category the site disables without a new policy version', () => {
  it('is no longer granted in a stored choice once /v1/config says so, and the change is recorded', async () => {
    configAnswer = {
      policyVersion: '1',
      categories: configV2.categories.map((c) => (c.key === 'marketing' ? { ...c, enabled: false } : c)),
    };
    const changes: boolean[] = [];
    const attune = tracker(
      {},
      {
        anonymousId: 'anon-1',
        consent: {
          categories: { necessary: true, analytics: true, personalization: false, marketing: true },
          policyVersion: '1',
        },
      },
    );
    attune.consent.onChange((state) => changes.push(state.categories.marketing === true));
    await settle();
    expect(attune.consent.get()).toMatchObject({
      decided: true,
      categories: { analytics: true, marketing: false },
    });
    expect(changes).toEqual([false]);
    await attune.flush();
    const recorded = posts.flatMap((p) => p.events).find((e) => e.name === 'consent.updated');
    expect(recorded?.properties).toMatchObject({ source: 'config', categories: { marketing: false } });
  });
});

describe('Retry-After and the sends a tab starts on its own', () => {
  it('coming back online during the wait the Worker asked for sends nothing before it ends', async () => {
    answers = [{ status: 429, retryAfter: '30' }];
    const attune = tracker({ flushInterval: 60_000 });
    attune.consent.set({ analytics: true });
    await attune.flush();
    expect(posts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(5_000);
    page.dispatchEvent(new Event('online'));
    await vi.advanceTimersByTimeAsync(20_000);
    expect(posts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(posts).toHaveLength(2);
  });

  it('events tracked offline are sent as soon as the browser is online again (no wait pending)', async () => {
    const attune = tracker({ flushInterval: 60_000 });
    attune.consent.set({ analytics: true });
    vi.stubGlobal('navigator', { onLine: false, language: 'en-GB' });
    await attune.flush();
    expect(posts).toHaveLength(0);
    vi.stubGlobal('navigator', { onLine: true, language: 'en-GB' });
    page.dispatchEvent(new Event('online'));
    await settle();
    expect(posts).toHaveLength(1);
  });
});

describe('a batch partly rate limited', () => {
  it('is sent again after Retry-After when the Worker took some events and asked for the rest later (207)', async () => {
    answers = [{ status: 207, retryAfter: '10' }];
    const attune = tracker({ flushInterval: 60_000 });
    attune.consent.set({ analytics: true });
    attune.track('product.viewed', { productId: 'p1' });
    await attune.flush();
    expect(posts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(names()).toEqual(['consent.updated', 'product.viewed', 'consent.updated', 'product.viewed']);
  });
});

describe('Global Privacy Control', () => {
  it('turns marketing off for a choice stored before GPC was switched on', async () => {
    vi.stubGlobal('navigator', { onLine: true, language: 'en-GB', globalPrivacyControl: true });
    const attune = tracker(
      { flushInterval: 60_000 },
      {
        anonymousId: 'anon-1',
        consent: {
          categories: { necessary: true, analytics: false, personalization: false, marketing: true },
          policyVersion: '1',
        },
      },
    );
    attune.track('product.viewed', { productId: 'p1' });
    await attune.flush();
    expect(attune.consent.get().categories.marketing).toBe(false);
    // Marketing was the only purpose: under GPC nothing may be sent or stored for it.
    expect(names()).toEqual([]);
    expect(storage.writes).not.toContain('store');
    // What the marketing grant let earlier pages store is forgotten; the choice stays, without ids.
    expect(storage.writes).toContain('wipe');
    await settle();
    expect(storage.saved.at(-1)).toEqual({
      consent: {
        categories: { necessary: true, analytics: false, personalization: false, marketing: false },
        policyVersion: '1',
      },
    });
  });
});

describe('the outbox bound', () => {
  it('drops (and reports) the oldest events when adopted ones overflow it, not the newest', async () => {
    answers = Array.from({ length: 10 }, () => ({ status: 503 }));
    const errors: AttuneError[] = [];
    storage.orphans = [
      { id: '01JDZZZZZZZZZZZZZZZZZZZZZ1', json: '{"id":"01JDZZZZZZZZZZZZZZZZZZZZZ1"}', bytes: 35 },
      { id: '01JDZZZZZZZZZZZZZZZZZZZZZ2', json: '{"id":"01JDZZZZZZZZZZZZZZZZZZZZZ2"}', bytes: 35 },
    ];
    const attune = tracker({ maxQueue: 2, autoPageView: true, onError: (e) => errors.push(e) }, grantedV1);
    await settle();
    answers = [];
    await attune.flush();
    // The page view (newest) is kept and sent; the oldest orphan is dropped, counted and forgotten.
    expect(names()).toContain('page.viewed');
    expect(errors).toEqual([expect.objectContaining({ code: 'dropped' })]);
    expect(storage.storedEvents.has('01JDZZZZZZZZZZZZZZZZZZZZZ1')).toBe(false);
  });
});

/**
 * A tab that set a policy-1 grant aside (/v1/config serves 2) and then chose analytics and
 * marketing under policy 2; the older tab (still on 1) then writes each of `olderChoices`
 * (storage events), and this tab records one event. Returns the tracker, its posts emptied first.
 */
async function decidedUnderV2ThenOlderTabWrites(olderChoices: Record<string, boolean>[]) {
  configAnswer = configV2;
  const attune = tracker({ flushInterval: 60_000 }, grantedV1);
  await settle();
  attune.consent.set({ analytics: true, marketing: true }, 'banner');
  await attune.flush();
  posts = [];
  for (const categories of olderChoices) {
    storage.saved.push({
      anonymousId: 'anon-1',
      consent: { categories: { necessary: true, ...categories }, policyVersion: '1' },
    });
    page.dispatchEvent(new Event('storage'));
  }
  attune.track('product.viewed', { productId: 'p1' });
  await settle();
  await attune.flush();
  return attune;
}

describe('other tabs', () => {
  it('another tab writing the visitor record does not drop this tab’s unsent proof of refusal', async () => {
    const attune = tracker({ flushInterval: 5000 });
    attune.consent.set({ analytics: false }, 'banner');
    await settle();
    expect(storage.saved).toHaveLength(1);
    // Another tab records an event (its visitor record is written again): a storage event here.
    page.dispatchEvent(new Event('storage'));
    await attune.flush();
    expect(names()).toEqual(['consent.updated']);
  });

  it('an event recorded before another tab’s withdrawal is heard of here neither writes the grant back nor goes out', async () => {
    const attune = tracker({ flushInterval: 60_000 }, grantedV1);
    await settle();
    // The other tab saved the refusal (no ids); its storage event is still on its way here.
    storage.saved.push({ consent: refused });
    attune.track('product.viewed', { productId: 'p1' });
    await settle();
    expect(storage.saved.at(-1)).toEqual({ consent: refused });
    expect(attune.consent.get().categories).toEqual(refused.categories);
    page.dispatchEvent(new Event('storage'));
    await attune.flush();
    expect(names()).toEqual([]);
    expect(storage.storedEvents.size).toBe(0);
  });

  it('a choice a new policy version set aside is not taken back from the record by this tab’s next events', async () => {
    configAnswer = configV2;
    const attune = tracker({ flushInterval: 60_000 }, grantedV1);
    await settle();
    for (const name of ['item.one', 'item.two', 'item.three']) {
      attune.track(name);
      await settle();
    }
    await attune.flush();
    // Asked again: nothing goes out until the visitor chooses under the new policy.
    expect(attune.consent.get()).toMatchObject({ decided: false, policyVersion: '2' });
    expect(names()).toEqual([]);
  });

  it('this tab’s own sign-in stands when it takes another tab’s new choice from the record', async () => {
    const attune = tracker({ flushInterval: 60_000 }, grantedV1);
    await settle();
    // Another tab granted personalization too; in the same task, this tab signs in.
    storage.saved.push({
      anonymousId: 'anon-1',
      consent: {
        ...grantedV1.consent,
        categories: { ...grantedV1.consent?.categories, personalization: true },
      },
    } as VisitorRecord);
    attune.identify('u1', {}, { signature: 'a'.repeat(64) });
    await settle();
    attune.track('product.viewed', { productId: 'p1' });
    await settle();
    await attune.flush();
    expect(posts.flatMap((p) => p.events.map((e) => e.userId))).toEqual(['u1', 'u1']);
    expect(storage.saved.at(-1)).toMatchObject({
      userId: 'u1',
      consent: { categories: { personalization: true } },
    });
  });

  it('a tab opened before the policy changed does not undo this tab’s asking again, though its sign-out is followed', async () => {
    configAnswer = configV2;
    const attune = tracker({ flushInterval: 60_000 }, grantedV1);
    await settle();
    expect(attune.consent.get()).toMatchObject({ decided: false, policyVersion: '2' });
    const heard: boolean[] = [];
    attune.consent.onChange((state) => heard.push(state.decided));
    // The older tab (still on policy 1) signs out: it writes its old grant with a new anonymous id.
    storage.saved.push({ ...grantedV1, anonymousId: 'anon-2' });
    page.dispatchEvent(new Event('storage'));
    attune.track('product.viewed', { productId: 'p1' });
    await settle();
    await attune.flush();
    // Still asked again: the old grant counts for nothing here, the event waits for a choice.
    expect(attune.consent.get().decided).toBe(false);
    expect(heard).toEqual([]);
    expect(names()).toEqual([]);
    // Chosen under the new policy: the waiting event goes, under the id the other tab's sign-out left.
    attune.consent.set({ analytics: true }, 'banner');
    await attune.flush();
    expect(names()).toEqual(['product.viewed', 'consent.updated']);
    expect(posts.flatMap((p) => p.events.map((e) => e.anonymousId))).toEqual(['anon-2', 'anon-2']);
  });

  it('an older tab’s wider grant in the record is not taken over this tab’s choice under the new policy', async () => {
    configAnswer = configV2;
    const attune = tracker({ flushInterval: 60_000 }, grantedV1);
    await settle();
    attune.consent.set({ analytics: true }, 'banner');
    await settle();
    // The older tab writes its policy-1 grant (personalization too); its storage event has not arrived yet.
    const olderGrant = {
      ...grantedV1.consent,
      categories: { ...grantedV1.consent?.categories, personalization: true },
    };
    storage.saved.push({ ...grantedV1, consent: olderGrant } as VisitorRecord);
    attune.track('product.viewed', { productId: 'p1' });
    await settle();
    await attune.flush();
    expect(attune.consent.get()).toMatchObject({ decided: true, categories: { personalization: false } });
    expect(storage.saved.at(-1)?.consent).toMatchObject({
      policyVersion: '2',
      categories: { personalization: false },
    });
    const claims = posts.flatMap((p) =>
      p.events.map((e) => (e.context as { consent: { policyVersion: string } }).consent),
    );
    expect(claims.map((c) => c.policyVersion)).toEqual(['2', '2']);
  });

  it('a withdrawal made in a tab on the older policy version is followed here, before a write and by its storage event', async () => {
    configAnswer = configV2;
    for (const heardFirst of [false, true]) {
      storage = emptyStorageLog();
      posts = [];
      const attune = tracker({ flushInterval: 60_000 }, grantedV1);
      await settle();
      attune.consent.set({ analytics: true }, 'banner');
      await attune.flush();
      posts = [];
      // The older tab (policy 1) withdraws: it saves its refusal.
      storage.saved.push({ consent: refused });
      if (heardFirst) page.dispatchEvent(new Event('storage'));
      attune.track('product.viewed', { productId: 'p1' });
      await settle();
      await attune.flush();
      expect(names()).toEqual([]);
      expect(attune.consent.get().categories.analytics).toBe(false);
      // Refused under this tab's (new) version: the older tab takes it as it is.
      expect(storage.saved.at(-1)).toEqual({ consent: { ...refused, policyVersion: '2' } });
      expect(storage.storedEvents.size).toBe(0);
    }
  });

  it('a change made in a tab on the older policy version that withdraws one purpose and grants another is followed for the withdrawal', async () => {
    // In the older tab's preferences: analytics and marketing off, personalization on.
    const attune = await decidedUnderV2ThenOlderTabWrites([
      { analytics: false, personalization: true, marketing: false },
    ]);
    // Nothing this tab still held is granted any more (personalization, never granted under
    // policy 2, is not taken): nothing goes out, nothing stays stored, and the record says so.
    expect(attune.consent.get().categories).toMatchObject({
      analytics: false,
      marketing: false,
      personalization: false,
    });
    expect(names()).toEqual([]);
    expect(storage.storedEvents.size).toBe(0);
    expect(storage.saved.at(-1)?.consent).toMatchObject({
      policyVersion: '2',
      categories: { analytics: false, marketing: false },
    });
  });

  it('a withdrawal of one purpose in a tab on the older policy version is followed while that tab grants more than this one', async () => {
    // The older tab granted personalization too (not taken here), then withdrew marketing.
    const attune = await decidedUnderV2ThenOlderTabWrites([
      { analytics: true, personalization: true, marketing: true },
      { analytics: true, personalization: true, marketing: false },
    ]);
    expect(attune.consent.get().categories).toMatchObject({
      analytics: true,
      marketing: false,
      personalization: false,
    });
    const claims = posts.flatMap((p) =>
      p.events.map((e) => (e.context as { consent: ConsentClaim }).consent),
    );
    expect(claims.map((c) => c.categories.marketing)).toEqual([false]);
    expect(storage.saved.at(-1)?.consent).toMatchObject({
      policyVersion: '2',
      categories: { marketing: false },
    });
  });

  it('a tab still on the older policy version follows a withdrawal made under the new one', async () => {
    // This tab loaded before the policy changed (its /v1/config still says 1).
    const attune = tracker({ flushInterval: 60_000 }, grantedV1);
    await settle();
    const refusedV2 = { ...refused, policyVersion: '2' };
    storage.saved.push({ consent: refusedV2 });
    page.dispatchEvent(new Event('storage'));
    attune.track('product.viewed', { productId: 'p1' });
    await settle();
    await attune.flush();
    expect(names()).toEqual([]);
    expect(attune.consent.get().categories.analytics).toBe(false);
    expect(storage.saved.at(-1)).toEqual({ consent: refusedV2 });
  });

  it('a tab still on the older policy version follows every later choice made under the new one, and never writes its old grant back', async () => {
    const attune = tracker({ flushInterval: 60_000 }, grantedV1);
    await settle();
    const v2 = (categories: Record<string, boolean>) => ({
      categories: {
        necessary: true,
        analytics: false,
        personalization: false,
        marketing: false,
        ...categories,
      },
      policyVersion: '2',
    });
    // Asked again in a newer tab: analytics granted; then analytics off, personalization on.
    storage.saved.push({ anonymousId: 'anon-1', consent: v2({ analytics: true }) });
    page.dispatchEvent(new Event('storage'));
    storage.saved.push({ anonymousId: 'anon-1', consent: v2({ personalization: true }) });
    attune.track('product.viewed', { productId: 'p1' });
    await settle();
    await attune.flush();
    expect(attune.consent.get().categories).toMatchObject({ analytics: false, personalization: true });
    expect(storage.saved.at(-1)?.consent).toEqual(v2({ personalization: true }));
    // (The event recorded before the change was read carries the choice it was made under.)
    posts = [];
    attune.track('product.viewed', { productId: 'p2' });
    await settle();
    await attune.flush();
    const claims = posts.flatMap((p) => p.events.map((e) => (e.context as { consent: unknown }).consent));
    expect(claims).toEqual([v2({ personalization: true })]);
    expect(storage.saved.at(-1)?.consent).toEqual(v2({ personalization: true }));
  });

  it('an undecided tab that has not loaded /v1/config follows a grant another tab made under the site’s version', async () => {
    const attune = tracker({ flushInterval: 60_000 });
    attune.track('product.viewed', { productId: 'p1' });
    await settle();
    const served = {
      categories: { necessary: true, analytics: true, personalization: false, marketing: false },
      policyVersion: '1.9f2c01',
    };
    storage.saved.push({ anonymousId: 'anon-9', consent: served });
    page.dispatchEvent(new Event('storage'));
    await attune.flush();
    expect(attune.consent.get()).toMatchObject({ decided: true, categories: { analytics: true } });
    expect(names()).toEqual(['product.viewed']);
  });

  it('with Global Privacy Control on, another tab’s withdrawal is followed before this tab’s first event too', async () => {
    vi.stubGlobal('navigator', { onLine: true, language: 'en-GB', globalPrivacyControl: true });
    const analyticsAndMarketing = {
      anonymousId: 'anon-1',
      consent: { ...grantedV1.consent, categories: { ...grantedV1.consent?.categories, marketing: true } },
    } as VisitorRecord;
    const attune = tracker({ flushInterval: 60_000 }, analyticsAndMarketing);
    await settle();
    storage.saved.push({ consent: refused });
    attune.track('product.viewed', { productId: 'p1' });
    await settle();
    await attune.flush();
    expect(storage.saved.at(-1)).toEqual({ consent: refused });
    expect(names()).toEqual([]);
  });
});

describe('withdrawal', () => {
  it('a batch in flight when consent is withdrawn is not sent again if its request fails', async () => {
    answers = [{ status: 503 }];
    const attune = tracker({ flushInterval: 60_000 });
    attune.consent.set({ analytics: true });
    attune.track('product.viewed', { productId: 'p1' });
    const inFlight = attune.flush();
    attune.consent.set({ analytics: false });
    await inFlight;
    await vi.advanceTimersByTimeAsync(120_000);
    await attune.flush();
    // The first request failed; after the withdrawal only its proof may go out.
    expect(posts.map((p) => p.events.map((e) => String(e.name)))).toEqual([
      ['consent.updated', 'product.viewed'],
      ['consent.updated'],
    ]);
  });

  it('a withdrawal made offline reaches the Worker from the next page, and then leaves the record', async () => {
    const attune = tracker({ flushInterval: 60_000 });
    attune.consent.set({ analytics: true });
    await attune.flush();
    vi.stubGlobal('navigator', { onLine: false, language: 'en-GB' });
    attune.consent.set({ analytics: false });
    // The tab closes offline: no beacon, and IndexedDB keeps nothing after a refusal.
    page.dispatchEvent(new Event('pagehide'));
    await settle();
    expect(names()).toEqual(['consent.updated']);

    vi.stubGlobal('navigator', { onLine: true, language: 'en-GB' });
    const record = storage.saved.at(-1);
    storage = emptyStorageLog();
    tracker({}, record);
    await vi.advanceTimersByTimeAsync(5_000);
    const refusal = posts.at(-1)?.events;
    expect(refusal?.map((e) => e.name)).toEqual(['consent.updated']);
    expect(refusal?.[0]).toMatchObject({ properties: { categories: { analytics: false } } });
    expect(storage.saved.at(-1)).toEqual({ consent: expect.objectContaining({ policyVersion: '1' }) });
  });

  it("a withdrawal's proof set aside by a new policy version is sent once, then leaves the record", async () => {
    configAnswer = configV2;
    const proof = {
      id: '01JDZZZZZZZZZZZZZZZZZZZZZ2',
      json: JSON.stringify({ id: '01JDZZZZZZZZZZZZZZZZZZZZZ2', name: 'consent.updated' }),
      bytes: 60,
    };
    let record: VisitorRecord | undefined = { consent: refused, proofs: [proof] };
    for (let visit = 0; visit < 3; visit++) {
      storage = emptyStorageLog();
      tracker({}, record);
      await vi.advanceTimersByTimeAsync(5_000);
      record = storage.saved.at(-1) ?? record;
    }
    expect(posts.flatMap((p) => p.events.map((e) => e.id))).toEqual([proof.id]);
    expect(record).toEqual({ consent: refused });
  });

  it("a tab that follows another's withdrawal keeps that tab's unsent proof in the record", async () => {
    const a = tracker({ flushInterval: 60_000 });
    a.consent.set({ analytics: true });
    await a.flush();
    // Tab B, open since the grant, shares the record.
    const b = tracker({ flushInterval: 60_000 }, storage.saved.at(-1));
    await settle();
    vi.stubGlobal('navigator', { onLine: false, language: 'en-GB' });
    a.consent.set({ analytics: false });
    await settle();
    const proofIds = storage.saved.at(-1)?.proofs?.map((p) => p.id);
    expect(proofIds).toHaveLength(1);
    // B follows the refusal (its storage event), then records something, which writes the record.
    page.dispatchEvent(new Event('storage'));
    b.track('product.viewed', { productId: 'p1' });
    await settle();
    expect(b.consent.get().categories.analytics).toBe(false);
    expect(storage.saved.at(-1)?.proofs?.map((p) => p.id)).toEqual(proofIds);
  });

  it("a signed-in person's withdrawal waits in the record without their user id and signature", async () => {
    const attune = tracker({ flushInterval: 60_000 });
    attune.consent.set({ analytics: true });
    attune.identify('user-1', {}, { signature: 'a'.repeat(64) });
    await attune.flush();
    vi.stubGlobal('navigator', { onLine: false, language: 'en-GB' });
    attune.consent.set({ analytics: false });
    attune.reset();
    await settle();
    const kept = storage.saved.at(-1)?.proofs ?? [];
    expect(kept.map((p) => JSON.parse(p.json).name)).toEqual(['consent.updated']);
    expect(JSON.stringify(storage.saved.at(-1))).not.toMatch(/user-1|aaaaaaaa/);
  });

  it('events another page left behind are not sent, nor kept, when consent is withdrawn while they are taken over', async () => {
    storage.orphans = [
      { id: '01JDZZZZZZZZZZZZZZZZZZZZZ1', json: '{"id":"01JDZZZZZZZZZZZZZZZZZZZZZ1"}', bytes: 35 },
    ];
    // A returning visitor: the take-over starts as the tracker loads; the CMP withdraws at once.
    const attune = tracker({ flushInterval: 60_000 }, grantedV1);
    attune.consent.set({ analytics: false }, 'cmp');
    await settle();
    await attune.flush();
    expect(names()).toEqual(['consent.updated']);
    expect(storage.storedEvents.size).toBe(0);
  });
});

describe('a preferences page', () => {
  it('that edits the categories get() gave and passes them to set() records the withdrawal', async () => {
    const attune = tracker({ flushInterval: 60_000 });
    attune.consent.set({ analytics: true });
    const changes: Record<string, boolean>[] = [];
    attune.consent.onChange((state) => changes.push(state.categories));
    const state = attune.consent.get();
    state.categories.analytics = false;
    // Not applied until set() is called with it.
    expect(attune.consent.get().categories.analytics).toBe(true);
    attune.consent.set(state.categories, 'preferences');
    await attune.flush();
    expect(changes.map((c) => c.analytics)).toEqual([false]);
    expect(storage.writes).toContain('wipe');
    const proofs = posts.flatMap((p) => p.events).filter((e) => e.name === 'consent.updated');
    expect(proofs.at(-1)).toMatchObject({
      properties: { categories: { analytics: false }, source: 'preferences' },
    });
  });
});

describe('a grant made in another tab', () => {
  it('stores the events that waited for it here, so closing this tab offline loses none', async () => {
    vi.stubGlobal('navigator', { onLine: false, language: 'en-GB' });
    tracker({ flushInterval: 60_000 }).track('product.viewed', { productId: 'p1' });
    await settle();
    expect(storage.storedEvents.size).toBe(0);
    // The other tab saved the visitor record with its grant; this tab hears of it.
    storage.saved.push(grantedV1);
    page.dispatchEvent(new Event('storage'));
    await settle();
    expect([...storage.storedEvents.values()].map((json) => JSON.parse(json).name)).toEqual([
      'product.viewed',
    ]);
  });
});

describe('odd input', () => {
  it('a numeric user id (script-tag sites pass one) does not get every later event rejected', async () => {
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ personalization: true });
    (attune.identify as (userId: unknown, traits: undefined, options: { signature: string }) => void)(
      12345,
      undefined,
      { signature: 'd'.repeat(64) },
    );
    attune.track('product.viewed', { productId: 'p1' });
    await attune.flush();
    await settle();
    expect(errors).toEqual([]);
  });

  it('properties JSON cannot hold (a cycle) are reported, not thrown, and the tracker goes on', async () => {
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ analytics: true });
    const looped: Record<string, unknown> = { productId: 'p1' };
    looped.self = looped;
    // Typed code cannot pass one; a script-tag page can.
    const track = attune.track as (name: string, properties: unknown) => void;
    expect(() => track('product.viewed', looped)).not.toThrow();
    attune.track('product.viewed', { productId: 'p2' });
    await attune.flush();
    await settle();
    expect(errors.map((e) => e.code)).toEqual(['invalid_event']);
    expect(names()).toEqual(['consent.updated', 'product.viewed']);
  });

  it('a consent listener that throws does not stop consent.set or the other listeners', async () => {
    const attune = tracker();
    const heard: boolean[] = [];
    attune.consent.onChange(() => {
      throw new Error('the site’s banner code');
    });
    attune.consent.onChange((state) => heard.push(state.decided));
    expect(() => attune.consent.set({ analytics: true })).not.toThrow();
    expect(heard).toEqual([true]);
    attune.track('product.viewed', { productId: 'p1' });
    await attune.flush();
    await settle();
    expect(names()).toEqual(['consent.updated', 'product.viewed']);
  });
});

describe('what the wire would refuse', () => {
  it('a consent source of the site’s own (not one of the SDK’s) keeps the proof of consent', async () => {
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ analytics: true }, 'cookie-banner');
    await attune.flush();
    await settle();
    expect(errors).toEqual([]);
    expect(names()).toEqual(['consent.updated']);
  });

  it('a consent source the wire would refuse (empty, too long) does not cost the proof of the choice', async () => {
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ analytics: true }, '');
    attune.consent.set({ personalization: true }, 'x'.repeat(100));
    await attune.flush();
    await settle();
    expect(errors).toEqual([]);
    expect(names()).toEqual(['consent.updated', 'consent.updated']);
  });

  it('a page title cut at 256 characters inside an emoji does not get the page view rejected', async () => {
    vi.stubGlobal('document', { referrer: '', title: `${'a'.repeat(255)}😀 shop`, hidden: false });
    const errors: AttuneError[] = [];
    const attune = tracker({ onError: (e) => errors.push(e) });
    attune.consent.set({ analytics: true });
    attune.page();
    await attune.flush();
    await settle();
    expect(errors).toEqual([]);
    expect(names()).toEqual(['consent.updated', 'page.viewed']);
  });
});

describe('a first visit’s choice', () => {
  it('made in a banner that read consent.config() first is recorded under the site’s policy version, so the next page sends at once', async () => {
    configAnswer = configV2;
    const first = tracker();
    await first.consent.config();
    first.consent.set({ analytics: true }, 'banner');
    expect(first.consent.get()).toMatchObject({ decided: true, policyVersion: '2' });
    await first.flush();
    const proof = posts.flatMap((p) => p.events).find((e) => e.name === 'consent.updated');
    expect(proof).toMatchObject({ properties: { policyVersion: '2', source: 'banner' } });
    const record = storage.saved.at(-1);
    expect(record?.consent?.policyVersion).toBe('2');
    // The next page checks the stored choice against /v1/config: it stands, and the page's events go.
    posts = [];
    const next = tracker({}, record);
    next.track('product.viewed', { productId: 'p2' });
    await next.flush();
    await settle();
    expect(next.consent.get()).toMatchObject({ decided: true, policyVersion: '2' });
    expect(names()).toEqual(['product.viewed']);
  });
});
