import type { ConsentState, CustomerAction } from '@attune/shared-schema';
import { describe, expect, it } from 'vitest';
import {
  applyEvent,
  type ConsentRecord,
  claimAfterWithdrawals,
  clearPersonalization,
  consentAfter,
  DEFAULT_RULES,
  decayedInterests,
  decayFactor,
  emptyProfile,
  evaluateSegments,
  gpcOfChoice,
  MAX_COUNTED_PAIRS,
  MAX_COUNTERS,
  MAX_PRODUCT_NAME_CHARS,
  MAX_TRAIT_KEYS,
  MAX_TRAITS_BYTES,
  mergeProfiles,
  type ProfileState,
  toView,
} from './model.ts';
import { newUlid } from './ulid.ts';

const DAY = 24 * 60 * 60 * 1000;
const T0 = Date.parse('2026-11-01T10:00:00.000Z');
const rules = { ...DEFAULT_RULES, halfLifeMs: 14 * DAY };

function ev(
  name: string,
  properties: CustomerAction['properties'] = {},
  extra: Partial<CustomerAction> = {},
): CustomerAction {
  return {
    id: newUlid(),
    type: name === 'page.viewed' ? 'page' : 'track',
    name,
    timestamp: new Date(T0).toISOString(),
    anonymousId: 'a1',
    properties,
    schemaVersion: 1,
    ...extra,
  };
}

function fresh(): ProfileState {
  return emptyProfile('demo', 'anon:a1', new Date(T0).toISOString());
}

describe('interest decay', () => {
  it('halves a score every half-life', () => {
    expect(decayFactor(14 * DAY, 14 * DAY)).toBeCloseTo(0.5, 10);
    expect(decayFactor(28 * DAY, 14 * DAY)).toBeCloseTo(0.25, 10);
    expect(decayFactor(0, 14 * DAY)).toBe(1);
    const decayed = decayedInterests({ 'category:shoes': 8 }, T0, T0 + 7 * DAY, rules);
    expect(decayed['category:shoes']).toBeCloseTo(8 / Math.SQRT2, 10);
  });

  it('decays before adding: a view after one half-life lands on half the old score', () => {
    const s = fresh();
    applyEvent(s, ev('cart.item.added', { productId: 'p1', category: 'shoes' }), T0, rules);
    expect(s.interests['category:shoes']).toBe(3);
    applyEvent(s, ev('product.viewed', { productId: 'p1', category: 'shoes' }), T0 + 14 * DAY, rules);
    expect(s.interests['category:shoes']).toBeCloseTo(1.5 + 1, 10);
    expect(toView(s, T0 + 28 * DAY, rules).interests['category:shoes']).toBeCloseTo(1.25, 10);
  });

  it('weights signals view < cart add < purchase, caps each increment and the total, forgets tiny scores', () => {
    const s = fresh();
    applyEvent(s, ev('product.viewed', { productId: 'a', category: 'v' }), T0, rules);
    applyEvent(s, ev('cart.item.added', { productId: 'b', category: 'c' }), T0, rules);
    applyEvent(
      s,
      ev('order.completed', {
        orderId: 'o',
        total: 1,
        products: [
          { productId: 'c', category: 'p' },
          { productId: 'd', category: 'p' },
        ],
      }),
      T0,
      rules,
    );
    expect(s.interests['category:v']).toBe(1);
    expect(s.interests['category:c']).toBe(3);
    // Two products of one category in one order still add one purchase's weight.
    expect(s.interests['category:p']).toBe(5);
    for (let i = 0; i < 40; i++)
      applyEvent(s, ev('order.completed', { orderId: `o${i}`, total: 1, category: 'p' }), T0, rules);
    expect(s.interests['category:p']).toBe(rules.maxScore);
    const later = toView(s, T0 + 400 * DAY, rules);
    expect(later.interests['category:v']).toBeUndefined();
  });
});

describe('segments', () => {
  it('new_visitor: first session, no order', () => {
    const s = fresh();
    applyEvent(s, ev('page.viewed', {}, { sessionId: 's1' }), T0, rules);
    expect(evaluateSegments(s, T0, rules)).toContain('new_visitor');
    applyEvent(s, ev('page.viewed', {}, { sessionId: 's2' }), T0 + DAY, rules);
    expect(evaluateSegments(s, T0 + DAY, rules)).not.toContain('new_visitor');
  });

  it('cart_abandoner: a cart left alone for 30 minutes without an order', () => {
    const s = fresh();
    applyEvent(s, ev('cart.item.added', { productId: 'p1' }), T0, rules);
    expect(evaluateSegments(s, T0 + 10 * 60_000, rules)).not.toContain('cart_abandoner');
    expect(evaluateSegments(s, T0 + 31 * 60_000, rules)).toContain('cart_abandoner');
    applyEvent(
      s,
      ev('order.completed', { orderId: 'o1', total: 20, products: [{ productId: 'p1' }] }),
      T0 + 40 * 60_000,
      rules,
    );
    expect(s.cart).toEqual([]);
    expect(s.purchased).toEqual(['p1']);
    expect(evaluateSegments(s, T0 + 2 * 60 * 60_000, rules)).not.toContain('cart_abandoner');
  });

  it('frequent_browser_rare_buyer: many views, at most one order', () => {
    const s = fresh();
    for (let i = 0; i < 9; i++) applyEvent(s, ev('product.viewed', { productId: `p${i}` }), T0 + i, rules);
    expect(evaluateSegments(s, T0 + DAY, rules)).not.toContain('frequent_browser_rare_buyer');
    applyEvent(s, ev('product.viewed', { productId: 'p9' }), T0 + 10, rules);
    expect(evaluateSegments(s, T0 + DAY, rules)).toContain('frequent_browser_rare_buyer');
    applyEvent(s, ev('order.completed', { orderId: 'o1', total: 5 }), T0 + 20, rules);
    applyEvent(s, ev('order.completed', { orderId: 'o2', total: 5 }), T0 + 30, rules);
    expect(evaluateSegments(s, T0 + DAY, rules)).not.toContain('frequent_browser_rare_buyer');
  });

  it('high_value: revenue over the threshold', () => {
    const s = fresh();
    applyEvent(s, ev('order.completed', { orderId: 'o1', total: 499 }), T0, rules);
    expect(evaluateSegments(s, T0, rules)).not.toContain('high_value');
    applyEvent(s, ev('order.completed', { orderId: 'o2', total: 1 }), T0, rules);
    expect(evaluateSegments(s, T0, rules)).toContain('high_value');
  });

  it('marketer-defined rules on counters', () => {
    const s = fresh();
    const custom = { ...rules, customSegments: [{ id: 'searcher', minCounters: { 'search.performed': 2 } }] };
    applyEvent(s, ev('search.performed', { query: 'boots' }), T0, custom);
    expect(evaluateSegments(s, T0, custom)).not.toContain('searcher');
    applyEvent(s, ev('search.performed', { query: 'hats' }), T0, custom);
    expect(evaluateSegments(s, T0, custom)).toContain('searcher');
  });
});

describe('interest shift', () => {
  it('emits interest.shifted when the dominant category changes sharply', () => {
    const s = fresh();
    applyEvent(s, ev('product.viewed', { productId: 'a', category: 'shoes' }), T0, rules);
    applyEvent(s, ev('product.viewed', { productId: 'b', category: 'shoes' }), T0 + 1, rules);
    applyEvent(s, ev('product.viewed', { productId: 'c', category: 'shoes' }), T0 + 1, rules);
    const emitted: CustomerAction[] = [];
    // Hats at 3 do not beat shoes at 3 by 1.5×; after the purchase (8) they do.
    emitted.push(
      ...applyEvent(s, ev('cart.item.added', { productId: 'h', category: 'hats' }), T0 + 2, rules).emitted,
    );
    expect(emitted).toHaveLength(0);
    emitted.push(
      ...applyEvent(s, ev('order.completed', { orderId: 'o', total: 5, category: 'hats' }), T0 + 3, rules)
        .emitted,
    );
    expect(emitted).toHaveLength(1);
    expect(emitted[0]).toMatchObject({
      name: 'interest.shifted',
      type: 'track',
      properties: { from: 'shoes', to: 'hats' },
    });
    // No second event while hats stays on top.
    expect(
      applyEvent(s, ev('product.viewed', { productId: 'h', category: 'hats' }), T0 + 4, rules).emitted,
    ).toHaveLength(0);
  });
});

describe('interest shift after a long-standing interest', () => {
  it('emits interest.shifted when a burst overtakes a category that was on top for longer than the window', () => {
    const s = fresh();
    // Shoes every day for ten days: dominant since day 0, still on top on day 9.
    for (let day = 0; day < 10; day++)
      applyEvent(s, ev('product.viewed', { productId: `s${day}`, category: 'shoes' }), T0 + day * DAY, rules);
    const emitted: CustomerAction[] = [];
    for (let i = 0; i < 6; i++)
      emitted.push(
        ...applyEvent(
          s,
          ev('cart.item.added', { productId: `c${i}`, category: 'cameras' }),
          T0 + 10 * DAY + i * 60_000,
          rules,
        ).emitted,
      );
    expect(emitted).toHaveLength(1);
    expect(emitted[0]).toMatchObject({ properties: { from: 'shoes', to: 'cameras' } });
  });

  it('emits nothing for a slow drift: the new category beats the old by the ratio only after the window', () => {
    const s = fresh();
    applyEvent(s, ev('cart.item.added', { productId: 's', category: 'shoes' }), T0, rules);
    // Hats pass shoes on day 2 (on top, but not 1.5× shoes) and reach 1.5× only on day 10.
    applyEvent(s, ev('cart.item.added', { productId: 'h1', category: 'hats' }), T0 + 2 * DAY, rules);
    const later = applyEvent(
      s,
      ev('cart.item.added', { productId: 'h2', category: 'hats' }),
      T0 + 10 * DAY,
      rules,
    );
    expect(s.dominant?.key).toBe('category:hats');
    expect(later.emitted).toHaveLength(0);
  });
});

describe('sessions across a sign-in', () => {
  it('counts the session a visitor signs in during once: a first visit stays new_visitor', () => {
    const browser = fresh();
    applyEvent(
      browser,
      ev('product.viewed', { productId: 'a', category: 'shoes' }, { sessionId: 'S1' }),
      T0,
      rules,
    );
    const person = emptyProfile('demo', 'user:u1', new Date(T0 + 1).toISOString());
    mergeProfiles(person, browser, rules);
    applyEvent(
      person,
      ev('identify', {}, { type: 'identify', userId: 'u1', sessionId: 'S1' }),
      T0 + 1,
      rules,
    );
    expect(person.counters.sessions).toBe(1);
    expect(evaluateSegments(person, T0 + 2, rules)).toContain('new_visitor');
  });
});

describe('a cart add flushed late, after an order', () => {
  it('does not put the bought product back in the cart, nor make the buyer a cart abandoner', () => {
    const s = fresh();
    applyEvent(
      s,
      ev('order.completed', { orderId: 'o', total: 10, productId: 'p' }),
      T0 + 30 * 60_000,
      rules,
    );
    applyEvent(s, ev('page.viewed'), T0 + 40 * 60_000, rules);
    // Added at 10:00 on a phone that was offline, flushed at 11:00.
    applyEvent(s, ev('cart.item.added', { productId: 'p', category: 'shoes' }), T0, rules);
    expect(s.cart).toEqual([]);
    expect(evaluateSegments(s, T0 + 3 * 60 * 60_000, rules)).not.toContain('cart_abandoner');
    // An add after the order is in the cart as before.
    applyEvent(s, ev('cart.item.added', { productId: 'q', category: 'shoes' }), T0 + 50 * 60_000, rules);
    expect(s.cart).toEqual(['q']);
  });

  it('keeps in the cart what was added after an order that arrives late (the order Flow caught up minutes later)', () => {
    const s = fresh();
    applyEvent(s, ev('cart.item.added', { productId: 'p', category: 'shoes' }), T0, rules);
    // 10:10: the shopper, having paid for p at 10:05, adds q.
    applyEvent(s, ev('cart.item.added', { productId: 'q', category: 'shoes' }), T0 + 10 * 60_000, rules);
    // 10:15: the order of 10:05 arrives.
    applyEvent(s, ev('order.completed', { orderId: 'o', total: 10, productId: 'p' }), T0 + 5 * 60_000, rules);
    expect(s.cart).toEqual(['q']);
    expect(s.counters.orders).toBe(1);
    // An order on time empties the cart, as before.
    applyEvent(
      s,
      ev('order.completed', { orderId: 'o2', total: 10, productId: 'q' }),
      T0 + 20 * 60_000,
      rules,
    );
    expect(s.cart).toEqual([]);
  });

  it('keeps an add made after an order that itself arrived late', () => {
    const s = fresh();
    applyEvent(s, ev('page.viewed'), T0 + 60 * 60_000, rules);
    // An offline phone flushes its order (10:00) and then a cart add (10:30) after a laptop's 11:00 view.
    applyEvent(s, ev('order.completed', { orderId: 'o', total: 10, productId: 'p' }), T0, rules);
    applyEvent(s, ev('cart.item.added', { productId: 'q', category: 'shoes' }), T0 + 30 * 60_000, rules);
    expect(s.cart).toEqual(['q']);
  });
});

describe('a sign-in merging a browser profile cleared of what it learned', () => {
  it('counts the visit once personalization is granted again in it', () => {
    const browser = fresh();
    applyEvent(
      browser,
      ev('product.viewed', { productId: 'a', category: 'shoes' }, { sessionId: 'S1' }),
      T0,
      rules,
    );
    // Merged without personalization: what the browser learned (its counters) is not taken.
    clearPersonalization(browser);
    const person = emptyProfile('demo', 'user:u1', new Date(T0 + 1).toISOString());
    mergeProfiles(person, browser, rules);
    applyEvent(
      person,
      ev('product.viewed', { productId: 'b' }, { userId: 'u1', sessionId: 'S1' }),
      T0 + 2,
      rules,
    );
    expect(person.counters.sessions).toBe(1);
  });
});

describe('merge', () => {
  it('adds decayed interests, counters and actions of the anonymous profile into the person', () => {
    const anon = fresh();
    applyEvent(anon, ev('product.viewed', { productId: 'a', category: 'shoes' }), T0, rules);
    applyEvent(anon, ev('cart.item.added', { productId: 'a', category: 'shoes' }), T0 + 1, rules);
    const person = emptyProfile('demo', 'user:u1', new Date(T0 + 14 * DAY).toISOString());
    applyEvent(
      person,
      ev('product.viewed', { productId: 'b', category: 'shoes' }, { anonymousId: 'a2' }),
      T0 + 14 * DAY,
      rules,
    );
    mergeProfiles(person, anon, rules);
    expect(person.interests['category:shoes']).toBeCloseTo(1 + 4 / 2, 3);
    expect(person.counters['product.viewed']).toBe(2);
    expect(person.cart).toEqual(['a']);
    expect(person.anonymousIds.sort()).toEqual(['a1', 'a2']);
    expect(person.recentActions.map((r) => r.productId)).toEqual(['b', 'a', 'a']);
  });
});

/** A consent record granting `purposes`, chosen at `chosenAt` and received at `recordedAt`. */
function record(purposes: string[], chosenAt: number | undefined, recordedAt: number): ConsentRecord {
  const categories: ConsentState['categories'] = { necessary: true };
  for (const p of ['analytics', 'personalization', 'marketing']) categories[p] = purposes.includes(p);
  const out: ConsentRecord = {
    state: { categories, policyVersion: '1' },
    recordedAt: new Date(recordedAt).toISOString(),
    eventId: newUlid(),
    source: 'banner',
  };
  if (chosenAt !== undefined) out.chosenAt = new Date(chosenAt).toISOString();
  return out;
}

describe('merge and consent', () => {
  it('a newer withdrawal merged in from a browser forgets what the person learned', () => {
    const person = emptyProfile('demo', 'user:u1', new Date(T0).toISOString());
    applyEvent(person, ev('product.viewed', { productId: 'a', category: 'shoes' }), T0, rules);
    applyEvent(person, ev('identify', {}, { type: 'identify', traits: { plan: 'gold' } }), T0 + 1, rules);
    person.consent = record(['analytics', 'personalization'], T0, T0);
    const browser = emptyProfile('demo', 'anon:b2', new Date(T0).toISOString());
    browser.consent = record(['analytics'], T0 + 60_000, T0 + 60_000);
    expect(mergeProfiles(person, browser, rules)).toBe(true);
    expect(person.consent?.state.categories.personalization).toBe(false);
    expect(person.interests).toEqual({});
    expect(person.recentActions).toEqual([]);
    expect(person.counters).toEqual({});
    expect(person.traits).toEqual({});
    expect(person.lastProductView).toBeUndefined();
  });

  it('an older browser choice merged in narrows the newer choice by what it withdraws if it arrived after it (a slow clock), never widens it', () => {
    const person = emptyProfile('demo', 'user:u1', new Date(T0).toISOString());
    applyEvent(person, ev('product.viewed', { productId: 'a', category: 'shoes' }), T0, rules);
    person.consent = record(['analytics', 'personalization'], T0 + 60_000, T0 + 60_000);
    // The browser's older choice grants marketing (not taken) and withdraws nothing the person grants.
    const granting = emptyProfile('demo', 'anon:b1', new Date(T0).toISOString());
    granting.consent = record(['analytics', 'personalization', 'marketing'], T0, T0);
    expect(mergeProfiles(person, granting, rules)).toBe(false);
    expect(person.consent?.state.categories).toMatchObject({ personalization: true, marketing: false });
    expect(person.interests['category:shoes']).toBe(1);
    // An older choice that reached the Worker before the person chose is just older: it stands aside.
    const inOrder = emptyProfile('demo', 'anon:b0', new Date(T0).toISOString());
    inOrder.consent = record(['analytics'], T0, T0);
    expect(mergeProfiles(person, inOrder, rules)).toBe(false);
    expect(person.consent?.state.categories).toMatchObject({ personalization: true });
    expect(person.interests['category:shoes']).toBe(1);
    // A browser whose choice withdrew personalization after the person chose, but is dated
    // before (a clock days slow): before, the person's grant stood as if it had not happened.
    const withdrawing = emptyProfile('demo', 'anon:b2', new Date(T0).toISOString());
    withdrawing.consent = record(['analytics'], T0, T0 + 120_000);
    expect(mergeProfiles(person, withdrawing, rules)).toBe(true);
    expect(person.consent?.state.categories).toMatchObject({ analytics: true, personalization: false });
    // The record keeps the newer choice's time, with the withdrawal's event as its proof.
    expect(person.consent?.chosenAt).toBe(new Date(T0 + 60_000).toISOString());
    expect(person.consent?.eventId).toBe(withdrawing.consent?.eventId);
    expect(person.interests).toEqual({});
  });

  it('takes the record chosen later, not the one received later (an offline queue delivers late)', () => {
    const person = emptyProfile('demo', 'user:u1', new Date(T0).toISOString());
    // Chosen at T0 + 1 h, received then.
    person.consent = record(['analytics'], T0 + 3_600_000, T0 + 3_600_000);
    const browser = emptyProfile('demo', 'anon:b2', new Date(T0).toISOString());
    // Chosen at T0, but received after the person's (it waited in an offline queue).
    browser.consent = record(['analytics', 'personalization', 'marketing'], T0, T0 + 7_200_000);
    mergeProfiles(person, browser, rules);
    expect(person.consent?.state.categories.personalization).toBe(false);
    // A record stored before choices carried their time: its arrival stands for it.
    const old = emptyProfile('demo', 'anon:b3', new Date(T0).toISOString());
    old.consent = record(['analytics', 'personalization'], undefined, T0 + 2 * 3_600_000);
    mergeProfiles(person, old, rules);
    expect(person.consent?.state.categories.personalization).toBe(true);
  });
});

describe('Global Privacy Control in a consent record', () => {
  it('is on when the request said Sec-GPC: 1 or the producer says GPC made the choice, unknown when the request is not known', () => {
    expect(gpcOfChoice(true, 'banner')).toBe(true);
    expect(gpcOfChoice(false, 'gpc')).toBe(true);
    expect(gpcOfChoice(false, 'banner')).toBe(false);
    // A replay from the event log does not know the request's header: unknown, not off.
    expect(gpcOfChoice(undefined, 'banner')).toBeUndefined();
    expect(gpcOfChoice(undefined, 'gpc')).toBe(true);
  });

  it('an older choice narrowing the record keeps GPC if either choice was made under it, unknown if either is not known', () => {
    const narrowed = (newer: boolean | undefined, older: boolean | undefined) => {
      const current = record(['analytics', 'personalization'], T0 + 60_000, T0 + 60_000);
      const received = record(['analytics'], T0, T0 + 120_000);
      if (newer !== undefined) current.gpc = newer;
      if (older !== undefined) received.gpc = older;
      const inForce = consentAfter(received, current);
      expect(inForce.state.categories.personalization).toBe(false);
      return inForce.gpc;
    };
    expect(narrowed(true, false)).toBe(true);
    expect(narrowed(false, true)).toBe(true);
    expect(narrowed(false, false)).toBe(false);
    // A record kept before GPC was recorded: not known, so not said to be off.
    expect(narrowed(undefined, false)).toBeUndefined();
    expect(narrowed(false, undefined)).toBeUndefined();
  });
});

describe('an event’s claim after the person’s withdrawals', () => {
  const everything: ConsentState = {
    categories: { necessary: true, analytics: true, personalization: true, marketing: true },
    policyVersion: '1',
  };
  it('loses what the choice in force withdraws, and nothing else', () => {
    const withdrawal = record(['analytics'], T0 + 60_000, T0 + 60_000);
    expect(claimAfterWithdrawals(everything, withdrawal, T0)).toEqual({
      categories: { necessary: true, analytics: true, personalization: false, marketing: false },
      policyVersion: '1',
    });
    // Made before the event under the claim's policy version, the choice is still the one in
    // force: another browser's banner may claim a grant the person withdrew there.
    expect(claimAfterWithdrawals(everything, withdrawal, T0 + 120_000)).toEqual({
      categories: { necessary: true, analytics: true, personalization: false, marketing: false },
      policyVersion: '1',
    });
    // Under an older policy version than the claim's, it is older than the answer the claim gives.
    const underOlderPolicy = record(['analytics'], T0, T0);
    underOlderPolicy.state.policyVersion = '0.9';
    expect(claimAfterWithdrawals(everything, underOlderPolicy, T0 + 60_000)).toBeUndefined();
    // Nothing withdrawn that the claim grants, no record, a purpose the record does not name.
    expect(
      claimAfterWithdrawals(
        everything,
        record(['analytics', 'personalization', 'marketing'], T0 + 1, T0 + 1),
        T0,
      ),
    ).toBeUndefined();
    expect(claimAfterWithdrawals(everything, undefined, T0)).toBeUndefined();
    const unnamed = record([], T0 + 1, T0 + 1);
    unnamed.state.categories = { necessary: false };
    expect(claimAfterWithdrawals(everything, unnamed, T0)).toBeUndefined();
  });
});

describe('bounded profile', () => {
  it('learns nothing from a product id, category or tag longer than MAX_PRODUCT_NAME_CHARS, and keeps the state small', () => {
    const s = fresh();
    const long = (i: number) => `${i}-${'x'.repeat(4000)}`;
    for (let i = 0; i < 300; i++) {
      applyEvent(
        s,
        ev('cart.item.added', { productId: long(i), category: long(i), tags: [long(i), 'ok'] }),
        T0 + i,
        rules,
      );
    }
    applyEvent(
      s,
      ev('order.completed', { products: [{ productId: long(1), category: long(1) }], total: 5 }),
      T0 + 400,
      rules,
    );
    expect(Object.keys(s.interests)).toEqual(['tag:ok']);
    expect(s.cart).toEqual([]);
    expect(s.purchased).toEqual([]);
    expect(s.recentActions[1]).toEqual({
      id: expect.any(String),
      name: 'cart.item.added',
      at: expect.any(String),
    });
    // 300 events with 4 KB names each: the state stays a few tens of KB, not megabytes.
    expect(JSON.stringify(s).length).toBeLessThan(30_000);
    // A name at the bound is learned from as before.
    const edge = 'c'.repeat(MAX_PRODUCT_NAME_CHARS);
    applyEvent(s, ev('cart.item.added', { productId: edge, category: edge }), T0 + 500, rules);
    expect(s.interests[`category:${edge}`]).toBe(3);
    expect(s.cart).toEqual([edge]);
  });

  it('counts at most MAX_COUNTERS distinct event names; known names and segment rules are still counted', () => {
    const custom = { ...rules, customSegments: [{ id: 'quizzers', minCounters: { 'quiz.done': 1 } }] };
    const s = fresh();
    for (let i = 0; i < MAX_COUNTERS + 50; i++) applyEvent(s, ev(`made.up_${i}`), T0 + i, custom);
    expect(Object.keys(s.counters).length).toBe(MAX_COUNTERS);
    expect(s.counters[`made.up_${MAX_COUNTERS + 49}`]).toBeUndefined();
    // A name counted before the bound keeps counting.
    applyEvent(s, ev('made.up_3'), T0 + 1000, custom);
    expect(s.counters['made.up_3']).toBe(2);
    applyEvent(s, ev('order.completed', { total: 10 }), T0 + 1001, custom);
    applyEvent(s, ev('quiz.done'), T0 + 1002, custom);
    expect(s.counters['order.completed']).toBe(1);
    expect(s.counters.orders).toBe(1);
    expect(s.counters.revenue).toBe(10);
    expect(s.counters['quiz.done']).toBe(1);
    expect(s.counters.events).toBe(MAX_COUNTERS + 53);
  });

  it('a merge keeps the counters within the bound', () => {
    const person = emptyProfile('demo', 'user:u1', new Date(T0).toISOString());
    const browser = fresh();
    for (let i = 0; i < 150; i++) applyEvent(person, ev(`mine.n_${i}`), T0 + i, rules);
    for (let i = 0; i < 150; i++) applyEvent(browser, ev(`theirs.n_${i}`), T0 + i, rules);
    applyEvent(browser, ev('mine.n_1'), T0 + 200, rules);
    mergeProfiles(person, browser, rules);
    expect(Object.keys(person.counters).length).toBe(MAX_COUNTERS);
    expect(person.counters['mine.n_1']).toBe(2);
    expect(person.counters.events).toBe(301);
  });

  it("a merge adds traits within MAX_TRAIT_KEYS, the person's own first", () => {
    const person = emptyProfile('demo', 'user:u1', new Date(T0).toISOString());
    const browser = fresh();
    const traits = (prefix: string, n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, i]));
    applyEvent(person, ev('identify', {}, { type: 'identify', traits: traits('mine', 80) }), T0, rules);
    applyEvent(
      browser,
      ev('identify', {}, { type: 'identify', traits: { mine0: 'theirs', ...traits('theirs', 50) } }),
      T0,
      rules,
    );
    mergeProfiles(person, browser, rules);
    expect(Object.keys(person.traits)).toHaveLength(MAX_TRAIT_KEYS);
    expect(person.traits.mine0).toBe(0);
    expect(person.traits.theirs19).toBe(19);
    expect(person.traits.theirs20).toBeUndefined();
  });

  it('a profile stored over MAX_TRAITS_BYTES before the bound held still takes a correction that does not grow it', () => {
    const person = emptyProfile('demo', 'user:u1', new Date(T0).toISOString());
    // As stored before the bound: well over it.
    person.traits = { email: 'old@example.com', bio: 'x'.repeat(20_000) };
    applyEvent(
      person,
      ev('identify', {}, { type: 'identify', traits: { email: 'new@example.com' } }),
      T0,
      rules,
    );
    expect(person.traits.email).toBe('new@example.com');
    // What would grow it further is still left out.
    applyEvent(person, ev('identify', {}, { type: 'identify', traits: { more: 'y' } }), T0 + 1, rules);
    expect(person.traits.more).toBeUndefined();
  });

  it('traits stay within MAX_TRAITS_BYTES of JSON, on identify and in a merge; the newest that do not fit are left out', () => {
    const big = 'x'.repeat(4000);
    const person = emptyProfile('demo', 'user:u1', new Date(T0).toISOString());
    applyEvent(
      person,
      ev('identify', {}, { type: 'identify', traits: { a: big, b: big, c: big, d: big, e: big, small: 1 } }),
      T0,
      rules,
    );
    expect(Object.keys(person.traits)).toEqual(['a', 'b', 'c', 'd', 'small']);
    // A newer value that would not fit leaves the old one.
    applyEvent(person, ev('identify', {}, { type: 'identify', traits: { small: big } }), T0 + 1, rules);
    expect(person.traits.small).toBe(1);
    const browser = fresh();
    applyEvent(browser, ev('identify', {}, { type: 'identify', traits: { f: big, g: 'ok' } }), T0, rules);
    mergeProfiles(person, browser, rules);
    expect(person.traits.f).toBeUndefined();
    expect(person.traits.g).toBe('ok');
    expect(new TextEncoder().encode(JSON.stringify(person.traits)).byteLength).toBeLessThanOrEqual(
      MAX_TRAITS_BYTES,
    );
    // One person's traits merged from many browsers stay bounded too.
    for (let i = 0; i < 10; i++) {
      const other = fresh();
      applyEvent(other, ev('identify', {}, { type: 'identify', traits: { [`k${i}`]: big } }), T0, rules);
      mergeProfiles(person, other, rules);
    }
    expect(new TextEncoder().encode(JSON.stringify(person.traits)).byteLength).toBeLessThanOrEqual(
      MAX_TRAITS_BYTES,
    );
  });
});

describe('the promo a trigger offered', () => {
  const promo = (code: string, expiresAt: number) => ({
    rule: 'outdoor',
    code,
    discountPercent: 10,
    expiresAt,
  });

  it('is in the view until it ends, by the real clock, with its end as ISO 8601', () => {
    const state = fresh();
    state.promo = promo('TRAIL-1', T0 + DAY);
    expect(toView(state, T0, rules).promo).toEqual({
      rule: 'outdoor',
      code: 'TRAIL-1',
      discountPercent: 10,
      expiresAt: new Date(T0 + DAY).toISOString(),
    });
    expect(toView(state, T0 + DAY, rules).promo).toBeUndefined();
  });

  it('goes with a merged browser to its person: the one that runs longer stays', () => {
    const person = emptyProfile('demo', 'user:u1', new Date(T0).toISOString());
    person.promo = promo('BREW-1', T0 + DAY);
    const browser = fresh();
    browser.promo = promo('TRAIL-2', T0 + 2 * DAY);
    mergeProfiles(person, browser, rules);
    expect(person.promo?.code).toBe('TRAIL-2');
    const later = emptyProfile('demo', 'user:u2', new Date(T0).toISOString());
    later.promo = promo('BREW-3', T0 + 3 * DAY);
    mergeProfiles(later, browser, rules);
    expect(later.promo?.code).toBe('BREW-3');
  });
});

describe('"viewed next" pairs', () => {
  const view = (s: ProfileState, productId: string, at: number) =>
    applyEvent(s, ev('product.viewed', { productId, category: 'outdoor' }), at, rules).covisit;

  it('counts a pair once per person a day, however often they go back and forth', () => {
    const s = fresh();
    const pairs: { from: string; to: string }[] = [];
    // One browser alternating between two products, 100 views 100 ms apart (one batch).
    for (let i = 0; i < 100; i++) {
      const pair = view(s, i % 2 === 0 ? 'trail-jacket' : 'grinder', T0 + i * 100);
      if (pair) pairs.push({ from: pair.from, to: pair.to });
    }
    expect(pairs).toEqual([
      { from: 'trail-jacket', to: 'grinder' },
      { from: 'grinder', to: 'trail-jacket' },
    ]);
    // A day later the person counts again.
    view(s, 'trail-jacket', T0 + DAY + 60_000);
    expect(view(s, 'grinder', T0 + DAY + 120_000)).toMatchObject({ from: 'trail-jacket', to: 'grinder' });
  });

  it('goes with a browser into its person at sign-in: a pair the browser counted is not counted again that day', () => {
    const browser = fresh();
    view(browser, 'trail-jacket', T0);
    expect(view(browser, 'grinder', T0 + 1000)).toBeDefined();
    const person = emptyProfile('demo', 'user:u1', new Date(T0).toISOString());
    mergeProfiles(person, browser, rules);
    // The view after the sign-in follows the browser's last one, and that pair was counted.
    expect(view(person, 'trail-jacket', T0 + 2000)).toMatchObject({ from: 'grinder', to: 'trail-jacket' });
    expect(view(person, 'grinder', T0 + 3000)).toBeUndefined();
  });

  it('remembers a bounded number of pairs, and forgets them when personalization is withdrawn', () => {
    const s = fresh();
    for (let i = 0; i < 100; i++) view(s, `p${i}`, T0 + i * 1000);
    expect(s.covisited).toHaveLength(MAX_COUNTED_PAIRS);
    clearPersonalization(s);
    expect(s.covisited).toBeUndefined();
  });
});
