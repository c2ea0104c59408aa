/**
 * Trigger rules: what a matching event emits, the per-person promo cap, and the consent
 * each emission needs — the person's choice as it stands, through withdrawals and sign-ins.
 */
import { env } from 'cloudflare:workers';
import {
  type ConsentState,
  type CustomerAction,
  eventMessagesOf,
  validateEvent,
} from '@attune/shared-schema';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCatalogIndex } from '../catalog/catalog-index.ts';
import { FIXTURE_CATALOG } from '../catalog/fixtures/catalog.ts';
import { putCatalogSnapshot } from '../catalog/index.ts';
import {
  addedToCart,
  anonymousIdInGroup,
  type Grants,
  seedPerson,
  viewed,
} from '../decide/fixtures/people.ts';
import { isInHoldout } from '../decide/holdout.ts';
import { profileStub } from '../identity/index.ts';
import {
  ALL,
  anonId,
  collect,
  consentFor,
  makeEvent,
  SITE,
  signed,
  useRecordedQueue,
} from '../ingest/test-support.ts';
import { viewProfile } from '../profile/client.ts';
import type { PersonKey, ProfileView } from '../profile/types.ts';
import { newUlid } from '../profile/ulid.ts';
import { ruleMatches, runTriggers } from './index.ts';

beforeAll(async () => {
  await putCatalogSnapshot(env, FIXTURE_CATALOG);
});

let people = 0;
async function person(grants: Grants): Promise<{ key: PersonKey; profile: () => Promise<ProfileView> }> {
  const key: PersonKey = `anon:trigger-person-${people++}`;
  await seedPerson(env, key, grants, [viewed('headlamp', 'outdoor-accessories', ['light', 'electronics'])]);
  const profile = async () => {
    const view = await profileStub(env, 'demo', key).view();
    if (!view) throw new Error('profile missing');
    return view;
  };
  return { key, profile };
}

function cartAdd(key: PersonKey, productId: string, category = 'outdoor'): CustomerAction {
  return {
    id: newUlid(),
    type: 'track',
    name: 'cart.item.added',
    timestamp: new Date().toISOString(),
    anonymousId: key.slice(5),
    properties: { ...addedToCart(productId, category).properties },
    schemaVersion: 1,
  };
}

const all = { analytics: true, personalization: true, marketing: true };

describe('runTriggers', () => {
  it('recommends the accessories and offers a personal promo on a matching cart add', async () => {
    const p = await person(all);
    const before = Date.now();
    const out = await runTriggers(env, {
      siteId: 'demo',
      events: [cartAdd(p.key, 'trail-jacket')],
      profile: await p.profile(),
      marketing: true,
    });
    expect(out.map((e) => e.name)).toEqual(['recommendation.triggered', 'promo.offered']);
    for (const event of out) expect(validateEvent(event).ok).toBe(true);
    const [recs, promo] = out;
    expect(recs?.properties?.items).toEqual(['headlamp', 'wool-socks', 'water-filter']);
    expect(promo?.properties).toMatchObject({ rule: 'outdoor-accessories', discountPercent: 10 });
    expect(String(promo?.properties?.code)).toMatch(/^TRAIL-[A-Z2-9]{8}$/);
    const expires = Date.parse(String(promo?.properties?.expiresAt));
    expect(expires).toBeGreaterThanOrEqual(before + 48 * 3_600_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 48 * 3_600_000);
    expect((await p.profile()).offers).toEqual({ 'outdoor-accessories': 1 });
  });

  it('stops offering at the rule’s cap per person, but keeps recommending', async () => {
    const p = await person(all);
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const out = await runTriggers(env, {
        siteId: 'demo',
        events: [cartAdd(p.key, 'espresso-beans', 'coffee')],
        profile: await p.profile(),
        marketing: true,
      });
      expect(out.some((e) => e.name === 'recommendation.triggered')).toBe(true);
      for (const e of out) if (e.name === 'promo.offered') codes.push(String(e.properties?.code));
    }
    // The coffee rule's cap is 2: two distinct codes, then none.
    expect(codes).toHaveLength(2);
    expect(new Set(codes).size).toBe(2);
    expect((await p.profile()).offers['coffee-accessories']).toBe(2);
  });

  it('fires a rule once per batch, however many matching events it holds', async () => {
    const p = await person(all);
    const out = await runTriggers(env, {
      siteId: 'demo',
      events: [cartAdd(p.key, 'trail-jacket'), cartAdd(p.key, 'hiking-boots')],
      profile: await p.profile(),
      marketing: true,
    });
    expect(out.filter((e) => e.name === 'promo.offered')).toHaveLength(1);
  });

  it('offers no promo and counts nothing without marketing consent', async () => {
    const p = await person({ analytics: true, personalization: true });
    const out = await runTriggers(env, {
      siteId: 'demo',
      events: [cartAdd(p.key, 'trail-jacket')],
      profile: await p.profile(),
      marketing: false,
    });
    expect(out.map((e) => e.name)).toEqual(['recommendation.triggered']);
    expect((await p.profile()).offers).toEqual({});
  });

  it('recommends nothing without personalization consent', async () => {
    const p = await person({ marketing: true });
    const out = await runTriggers(env, {
      siteId: 'demo',
      events: [cartAdd(p.key, 'trail-jacket')],
      profile: await p.profile(),
      marketing: true,
    });
    expect(out.map((e) => e.name)).toEqual(['promo.offered']);
  });

  it('ignores other categories, other events and disabled rules', async () => {
    const p = await person(all);
    const view: CustomerAction = { ...cartAdd(p.key, 'trail-jacket'), name: 'product.viewed' };
    const out = await runTriggers(env, {
      siteId: 'demo',
      events: [cartAdd(p.key, 'tent-2p', 'camping'), view],
      profile: await p.profile(),
      marketing: true,
    });
    expect(out).toEqual([]);
    expect((await p.profile()).offers).toEqual({});
  });
});

describe('a refund', () => {
  it('fires no rule, even one a marketer set on it: a return earns no promo', () => {
    const catalog = buildCatalogIndex(FIXTURE_CATALOG);
    const rule = { id: 'win-back', enabled: true, on: 'order.refunded', when: {} };
    const refund = makeEvent(anonId(), 'order.refunded', { properties: { orderId: 'o-1', total: 20 } });
    expect(ruleMatches(rule, refund, catalog)).toBe(false);
    // The same rule on the order itself does fire.
    const order = makeEvent(anonId(), 'order.completed', { properties: { orderId: 'o-1', total: 20 } });
    expect(ruleMatches({ ...rule, on: 'order.completed' }, order, catalog)).toBe(true);
  });
});

describe('recommendations and the person’s recorded choice', () => {
  it('recommends nothing when the choice was made under an earlier policy version', async () => {
    // They granted everything under policy version 0; the site is on version 1 now, so
    // until they choose again nothing is granted (as decide judges it).
    const p = await person({ ...all, policyVersion: '0' });
    expect((await p.profile()).consent?.categories.personalization).toBe(true);
    const out = await runTriggers(env, {
      siteId: 'demo',
      events: [cartAdd(p.key, 'trail-jacket')],
      profile: await p.profile(),
      marketing: true,
    });
    expect(out.map((e) => e.name)).not.toContain('recommendation.triggered');
  });
});

/** Recommendations and promotions through the whole ingest path (collect → ProfileDO → triggers → queue). */
describe('triggers through the ingest path', () => {
  const queue = useRecordedQueue();

  const marketingOnly = consentFor('analytics', 'marketing');
  /** A consent choice as the banner sends it. */
  const choice = (a: string, consent: ConsentState, extra: Partial<CustomerAction> = {}) =>
    makeEvent(a, 'consent.updated', {
      properties: { categories: consent.categories, policyVersion: consent.policyVersion, source: 'banner' },
      consent,
      ...extra,
    });
  const addJacket = (a: string, consent: ConsentState, extra: Partial<CustomerAction> = {}) =>
    makeEvent(a, 'cart.item.added', {
      properties: { productId: 'trail-jacket', category: 'outdoor', price: 189 },
      consent,
      ...extra,
    });
  /** The promo codes the Worker queued so far. */
  const promoCodes = () =>
    eventMessagesOf(queue.messages)
      .filter((m) => m.event.name === 'promo.offered')
      .map((m) => String(m.event.properties?.code));
  /** The recommendation.triggered events the Worker queued for a browser, with their purposes. */
  const recommendations = (a: string) =>
    eventMessagesOf(queue.messages).filter(
      (m) => m.event.name === 'recommendation.triggered' && m.event.anonymousId === a,
    );

  it('offers a held-out person no promo and recommends them nothing: the holdout keeps the control experience', async () => {
    // Everything granted, a cart add that fires the TRAIL rule: a treated person gets a code
    // and accessories (above), a held-out one must get neither, or lift compares two treated groups.
    const held = anonymousIdInGroup('held-trigger', true);
    const treated = anonymousIdInGroup('treated-trigger', false);
    await collect([choice(held, ALL), addJacket(held, ALL)]);
    expect(promoCodes()).toEqual([]);
    expect(recommendations(held)).toEqual([]);
    expect((await viewProfile(env, SITE, `anon:${held}`))?.offers).toEqual({});
    await collect([choice(treated, ALL), addJacket(treated, ALL)]);
    expect(promoCodes()).toHaveLength(1);
    expect(recommendations(treated)).toHaveLength(1);
  });

  it('keeps a held-out browser out of triggers after it signs in (its group goes with it)', async () => {
    const held = anonymousIdInGroup('held-trigger-signin', true);
    // A user id whose own key is not held out: the person's group is their first browser's.
    let userId = 'held-trigger-customer-0';
    for (let i = 1; isInHoldout(`user:${userId}`, 10); i++) userId = `held-trigger-customer-${i}`;
    const signIn = { userId, userIdSignature: await signed(userId) };
    await collect([choice(held, ALL)]);
    await collect([addJacket(held, ALL, signIn)]);
    expect((await viewProfile(env, SITE, `user:${userId}`))?.anonymousIds).toEqual([held]);
    expect(promoCodes()).toEqual([]);
    expect(recommendations(held)).toEqual([]);
  });

  it('withdrawing personalization (marketing kept) does not offer a capped promo again', async () => {
    const a = anonId();
    await collect([choice(a, ALL), addJacket(a, ALL)]);
    // The TRAIL rule's cap is one per person.
    expect(promoCodes()).toHaveLength(1);
    await collect([choice(a, marketingOnly)]);
    await collect([addJacket(a, marketingOnly)]);
    await collect([addJacket(a, marketingOnly)]);
    expect(promoCodes()).toHaveLength(1);
    expect((await viewProfile(env, SITE, `anon:${a}`))?.offers).toEqual({ 'outdoor-accessories': 1 });
  });

  it('a sign-in without personalization keeps the browser’s promos counted for the person', async () => {
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    const signIn = { userId, userIdSignature: await signed(userId) };
    await collect([addJacket(b, ALL)]);
    expect(promoCodes()).toHaveLength(1);
    // They sign in, unticking personalization: the person takes over only who the browser is.
    await collect([choice(b, marketingOnly, signIn)]);
    await collect([addJacket(b, marketingOnly, signIn)]);
    expect(promoCodes()).toHaveLength(1);
  });

  it('offers no promo when the same batch withdraws marketing after the cart add', async () => {
    const a = anonId();
    const withdrawn = consentFor('analytics', 'personalization');
    const res = await collect([addJacket(a, ALL), choice(a, withdrawn)]);
    expect(await res.json()).toMatchObject({ accepted: 2 });
    expect((await viewProfile(env, SITE, `anon:${a}`))?.consent?.categories.marketing).toBe(false);
    expect(promoCodes()).toEqual([]);
    // Nothing was counted against the cap either: granting marketing again can still offer it.
    expect((await viewProfile(env, SITE, `anon:${a}`))?.offers).toEqual({});
  });

  it('offers no promo when a sign-in later in the same batch withdraws marketing', async () => {
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    const signIn = { userId, userIdSignature: await signed(userId) };
    const withdrawn = consentFor('analytics', 'personalization');
    // An anonymous cart add, then the person signs in and unticks marketing: two runs of
    // the batch (the browser's, then the person's), one choice at the end of it.
    const res = await collect([addJacket(b, ALL), choice(b, withdrawn, signIn)]);
    expect(await res.json()).toMatchObject({ accepted: 2 });
    const person = await viewProfile(env, SITE, `user:${userId}`);
    expect(person?.anonymousIds).toEqual([b]);
    expect(person?.consent?.categories.marketing).toBe(false);
    expect(promoCodes()).toEqual([]);
    expect(person?.offers).toEqual({});
    // Granting marketing again (a later batch) can still offer it.
    await collect([choice(b, ALL, signIn), addJacket(b, ALL, signIn)]);
    expect(promoCodes()).toHaveLength(1);
  });

  it('runs a rule once for a person whose browser run and signed-in run are in one batch', async () => {
    const b = anonId('b');
    const userId = `u-${anonId()}`;
    const signIn = { userId, userIdSignature: await signed(userId) };
    // The coffee rule's cap is 2: both cart adds are one batch, so one promo.
    const addBeans = (extra: Partial<CustomerAction> = {}) =>
      makeEvent(b, 'cart.item.added', {
        properties: { productId: 'espresso-beans', category: 'coffee' },
        consent: ALL,
        ...extra,
      });
    await collect([addBeans(), addBeans(signIn)]);
    expect(promoCodes()).toHaveLength(1);
    expect((await viewProfile(env, SITE, `user:${userId}`))?.offers).toEqual({ 'coffee-accessories': 1 });
  });

  it('logs the accessories recommended to a person who granted personalization but not marketing', async () => {
    const a = anonId();
    const noMarketing = consentFor('analytics', 'personalization');
    const res = await collect([choice(a, noMarketing), addJacket(a, noMarketing)]);
    expect(await res.json()).toMatchObject({ accepted: 2 });
    const [recommended, ...more] = recommendations(a);
    expect(more).toEqual([]);
    expect(recommended?.event.properties).toMatchObject({
      rule: 'outdoor-accessories',
      items: expect.arrayContaining([expect.any(String)]),
    });
    // In the event log (analytics), never as a promotion.
    expect(recommended?.purposes).toEqual(['analytics', 'personalization']);
    expect(promoCodes()).toEqual([]);
    expect((await viewProfile(env, SITE, `anon:${a}`))?.offers).toEqual({});
  });

  it('logs no recommendation when the same batch withdraws analytics after the cart add', async () => {
    const a = anonId();
    const granted = consentFor('analytics', 'personalization');
    await collect([choice(a, granted), addJacket(a, granted), choice(a, consentFor('personalization'))]);
    expect((await viewProfile(env, SITE, `anon:${a}`))?.consent?.categories.analytics).toBe(false);
    expect(recommendations(a)).toEqual([]);
  });

  it('logs no recommendation for a person who did not grant analytics (the event log’s purpose)', async () => {
    const a = anonId();
    const personalizationOnly = consentFor('personalization');
    await collect([choice(a, personalizationOnly), addJacket(a, personalizationOnly)]);
    expect(recommendations(a)).toEqual([]);
    expect(promoCodes()).toEqual([]);
  });

  it('offers no promo for a cart add made before marketing was granted in the same batch', async () => {
    const a = anonId();
    const noMarketing = consentFor('analytics', 'personalization');
    const view = makeEvent(a, 'page.viewed', { consent: ALL });
    await collect([choice(a, noMarketing), addJacket(a, noMarketing), choice(a, ALL), view]);
    // The cart add earns its recommendation, but it was not made for the promotions sink.
    expect(recommendations(a)).toHaveLength(1);
    expect(promoCodes()).toEqual([]);
    expect((await viewProfile(env, SITE, `anon:${a}`))?.offers).toEqual({});
  });

  it('offers a promo with its accessories, but logs no recommendation, without analytics', async () => {
    const a = anonId();
    const noAnalytics = consentFor('personalization', 'marketing');
    await collect([choice(a, noAnalytics), addJacket(a, noAnalytics)]);
    const promos = eventMessagesOf(queue.messages).filter(
      (m) => m.event.name === 'promo.offered' && m.event.anonymousId === a,
    );
    expect(promos).toHaveLength(1);
    expect(promos[0]?.event.properties?.items).toEqual(expect.arrayContaining([expect.any(String)]));
    expect(recommendations(a)).toEqual([]);
  });
});
