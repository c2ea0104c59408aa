import { validateEvent } from '@attune/shared-schema';
import { describe, expect, it } from 'vitest';
import { buildCatalogIndex } from '../catalog/catalog-index.ts';
import { FIXTURE_CATALOG } from '../catalog/fixtures/catalog.ts';
import type { ProfileView } from '../profile/types.ts';
import { decideSlots, type SlotContext } from './decide.ts';
import { consentState } from './fixtures/people.ts';
import { CATALOG_WITH_TARGETED_PROMO, OUTDOOR_PROMO } from './fixtures/targeted-promo.ts';
import { DEFAULT_EXPERIMENT } from './holdout.ts';
import { type LoggedEvent, measureLift } from './lift.ts';

const catalog = buildCatalogIndex(FIXTURE_CATALOG);
const profile: ProfileView = {
  siteId: 'demo',
  personKey: 'anon:abc12345',
  anonymousIds: ['abc12345'],
  traits: {},
  interests: { 'category:coffee': 5 },
  segments: [],
  counters: {},
  recentActions: [],
  cart: [],
  purchased: [],
  offers: {},
  consent: consentState({ analytics: true, personalization: true }),
  firstSeen: '2026-11-01T00:00:00.000Z',
  lastSeen: '2026-11-01T00:00:00.000Z',
  asOf: '2026-11-01T00:00:00.000Z',
};
const ctx = (over: Partial<SlotContext>): SlotContext => ({
  siteId: 'demo',
  personKey: 'anon:abc12345',
  anonymousId: 'abc12345',
  slots: ['hero', 'recommendations'],
  budgetMs: 50,
  profile,
  consent: profile.consent,
  personalization: true,
  holdout: false,
  covisits: new Map(),
  analytics: true,
  ...over,
});

describe('decision.served', () => {
  it('records one valid event per slot with variant, holdout and experiment under analytics consent', () => {
    const { response, served } = decideSlots(catalog, ctx({}));
    expect(served).toHaveLength(2);
    for (const message of served) {
      expect(message).toMatchObject({
        kind: 'event',
        siteId: 'demo',
        personId: 'anon:abc12345',
        purposes: ['analytics'],
      });
      expect(validateEvent(message.event).ok).toBe(true);
    }
    const hero = served.find((m) => m.event.properties?.slot === 'hero');
    expect(hero?.event.properties).toMatchObject({
      decisionId: response.decisions.hero?.decisionId,
      variant: 'hero-coffee',
      holdout: false,
      experiment: DEFAULT_EXPERIMENT,
      personalized: true,
    });
    expect(hero?.event.id).toBe(response.decisions.hero?.decisionId);
  });

  it('records the held-out decision too, marked as holdout, so both groups are measured', () => {
    const { response, served } = decideSlots(catalog, ctx({ holdout: true }));
    expect(response.personalized).toBe(false);
    expect(response.decisions.hero?.variant).toBe('hero-default');
    expect(served.every((m) => m.event.properties?.holdout === true)).toBe(true);
  });

  it('records nothing without analytics consent', () => {
    expect(decideSlots(catalog, ctx({ analytics: false })).served).toEqual([]);
  });
});

describe('decision.served of the held-out, as of the treated', () => {
  // A slot with targeted content only: a coffee banner, and nothing for anyone else (the
  // page keeps its own content, and no decision is served).
  const targetedOnly = buildCatalogIndex({
    ...FIXTURE_CATALOG,
    version: 'fixture-targeted-only-banner',
    slotContent: [
      ...FIXTURE_CATALOG.slotContent,
      {
        id: 'banner-coffee',
        slot: 'banner',
        kind: 'banner',
        title: 'Fresh beans',
        body: 'Roasted this week.',
        targetInterests: ['category:coffee'],
        targetSegments: [],
        isDefault: false,
        priority: 1,
      },
    ],
  });
  const servedSlots = (over: Partial<SlotContext>) =>
    decideSlots(targetedOnly, ctx({ slots: ['banner'], ...over })).served.map((m) => ({
      slot: m.event.properties?.slot,
      holdout: m.event.properties?.holdout,
    }));

  it('logs a held-out person as exposed where a treated person like them is shown something', () => {
    // The treated coffee fan sees the banner and counts; a held-out coffee fan must count too,
    // or the holdout loses exactly the people targeting reaches (lift compares unlike groups).
    expect(servedSlots({})).toEqual([{ slot: 'banner', holdout: false }]);
    const held = decideSlots(targetedOnly, ctx({ slots: ['banner'], holdout: true }));
    expect(held.served.map((m) => m.event.properties)).toEqual([
      expect.objectContaining({ slot: 'banner', holdout: true, eligible: true, personalized: false }),
    ]);
    for (const m of held.served) expect(validateEvent(m.event).ok).toBe(true);
    // The page keeps its own content: nothing is answered for the slot.
    expect(held.response.decisions.banner).toBeUndefined();
  });

  it('logs neither group where a treated person would be shown nothing', () => {
    const noCoffee: ProfileView = { ...profile, interests: { 'category:outdoor': 5 } };
    expect(servedSlots({ profile: noCoffee })).toEqual([]);
    expect(servedSlots({ profile: noCoffee, holdout: true })).toEqual([]);
  });
});

describe('recommendations while a trigger product is in the cart', () => {
  it('never recommends the product on screen, even when it is one of the rule’s accessories', () => {
    const jacketInCart: ProfileView = {
      ...profile,
      interests: { 'category:outdoor': 3 },
      cart: ['trail-jacket'],
      recentActions: [
        {
          id: '1',
          name: 'cart.item.added',
          at: profile.asOf,
          productId: 'trail-jacket',
          category: 'outdoor',
        },
      ],
    };
    const ids = (productId?: string) =>
      decideSlots(
        catalog,
        ctx({ profile: jacketInCart, slots: ['recommendations'], ...(productId ? { productId } : {}) }),
      ).response.decisions.recommendations?.items?.map((i) => i.id) ?? [];
    // On another page the headlamp is one of the jacket's accessories…
    expect(ids()).toContain('headlamp');
    // …on its own page it is not recommended to itself; the rule still leads, with another pick.
    const onItsPage = decideSlots(
      catalog,
      ctx({ profile: jacketInCart, slots: ['recommendations'], productId: 'headlamp' }),
    ).response.decisions.recommendations;
    expect(onItsPage?.items?.map((i) => i.id)).not.toContain('headlamp');
    expect(onItsPage?.items).toHaveLength(3);
    expect(onItsPage?.items?.every((i) => i.reason === 'goes with your Trail Jacket')).toBe(true);
  });
});

describe('promos chosen for a person', () => {
  const withPromo = buildCatalogIndex(CATALOG_WITH_TARGETED_PROMO);
  const outdoorFan = (grants: { marketing: boolean }): Partial<SlotContext> => {
    const consent = consentState({ analytics: true, personalization: true, ...grants });
    return {
      profile: { ...profile, interests: { 'category:outdoor': 5 }, consent },
      consent,
      slots: ['hero', 'promo'],
    };
  };
  const promo = (over: Partial<SlotContext>) => decideSlots(withPromo, ctx(over)).response.decisions;

  it('target a person only under marketing consent', () => {
    expect(promo(outdoorFan({ marketing: true })).promo).toMatchObject({
      variant: 'promo-outdoor',
      reason: 'interest in outdoor',
    });
    const without = promo(outdoorFan({ marketing: false }));
    expect(without.promo).toMatchObject({
      variant: 'promo-default',
      reason: 'default: marketing not granted',
    });
    // Banners are personalization alone.
    expect(without.hero?.variant).toBe('hero-outdoor');
  });

  it('are not targeted under Sec-GPC: 1, nor when the browser’s consent withdrew marketing', () => {
    expect(promo({ ...outdoorFan({ marketing: true }), gpc: true }).promo?.variant).toBe('promo-default');
    const withdrawn = consentState({ analytics: true, personalization: true, marketing: false });
    expect(promo({ ...outdoorFan({ marketing: true }), browserConsent: withdrawn }).promo?.variant).toBe(
      'promo-default',
    );
  });
});

describe('a promo a trigger offered the person', () => {
  const withPromo = buildCatalogIndex(CATALOG_WITH_TARGETED_PROMO);
  const offered = (marketing: boolean, expiresAt = '2099-01-01T00:00:00.000Z'): Partial<SlotContext> => {
    const consent = consentState({ analytics: true, personalization: true, marketing });
    const promo = { rule: 'outdoor-accessories', code: 'TRAIL-7K2Q9', discountPercent: 10, expiresAt };
    return {
      profile: { ...profile, interests: { 'category:outdoor': 5 }, consent, promo },
      consent,
      slots: ['promo', 'hero'],
    };
  };

  it('leads the promo slot with its code, under marketing', () => {
    const { response, served } = decideSlots(withPromo, ctx(offered(true)));
    expect(response.decisions.promo).toMatchObject({
      variant: 'offer:outdoor-accessories',
      kind: 'promo',
      title: '10 % off',
      body: 'Your personal code, valid until 2099-01-01.',
      promoCode: 'TRAIL-7K2Q9',
    });
    // Only a promo slot: a banner slot is chosen as before.
    expect(response.decisions.hero?.variant).toBe('hero-outdoor');
    expect(served.find((m) => m.event.properties?.slot === 'promo')?.event.properties).toMatchObject({
      variant: 'offer:outdoor-accessories',
    });
  });

  it("takes the rule's own copy, in the shop's language, with the discount and the last day filled in", () => {
    const german = buildCatalogIndex({
      ...CATALOG_WITH_TARGETED_PROMO,
      triggerRules: CATALOG_WITH_TARGETED_PROMO.triggerRules.map((r) =>
        r.id === 'outdoor-accessories' && r.promo
          ? {
              ...r,
              promo: { ...r.promo, title: '{discount} % Rabatt', body: 'Ihr Code, gültig bis {until}.' },
            }
          : r,
      ),
    });
    expect(decideSlots(german, ctx(offered(true))).response.decisions.promo).toMatchObject({
      title: '10 % Rabatt',
      body: 'Ihr Code, gültig bis 2099-01-01.',
      promoCode: 'TRAIL-7K2Q9',
    });
  });

  it('is not shown without marketing, in the holdout group, or once the profile view dropped it (ended)', () => {
    expect(decideSlots(withPromo, ctx(offered(false))).response.decisions.promo?.promoCode).toBeUndefined();
    const held = decideSlots(withPromo, ctx({ ...offered(true), holdout: true })).response.decisions.promo;
    expect(held).toMatchObject({ variant: 'promo-default' });
    expect(held?.promoCode).toBeUndefined();
  });
});

describe('a slot whose variants are all targeted (its untargeted default deleted)', () => {
  const forBuyers = {
    ...OUTDOOR_PROMO,
    id: 'promo-buyers',
    title: '20 % off for buyers',
    targetInterests: [],
    targetSegments: ['high_value'],
  };
  const slotOf = (variants: (typeof OUTDOOR_PROMO)[]) =>
    buildCatalogIndex({
      ...FIXTURE_CATALOG,
      version: 'fixture-targeted-only',
      slotContent: [...FIXTURE_CATALOG.slotContent.filter((v) => v.slot !== 'promo'), ...variants],
    });
  const buyer = (marketing: boolean): Partial<SlotContext> => {
    const consent = consentState({ analytics: true, personalization: true, marketing });
    return { profile: { ...profile, segments: ['high_value'], consent }, consent, slots: ['promo'] };
  };

  it('is left to the page for someone who did not consent: no targeted variant stands in as the default', () => {
    const refused = ctx({ profile: null, consent: undefined, personalization: false, slots: ['promo'] });
    for (const variants of [[forBuyers], [{ ...forBuyers, isDefault: true }]]) {
      const { response, served } = decideSlots(slotOf(variants), refused);
      expect(response.decisions).toEqual({});
      expect(served).toEqual([]);
    }
    // Consented to personalization but not to marketing: the promo is not targeted, so not shown.
    expect(decideSlots(slotOf([forBuyers]), ctx(buyer(false))).response.decisions).toEqual({});
  });

  it('still reaches the people it targets, marked default or not', () => {
    for (const variants of [[forBuyers], [{ ...forBuyers, isDefault: true }]]) {
      expect(decideSlots(slotOf(variants), ctx(buyer(true))).response.decisions.promo).toMatchObject({
        variant: 'promo-buyers',
      });
    }
  });
});

describe('measureLift', () => {
  const day = 24 * 3_600_000;
  const t0 = Date.parse('2026-11-01T00:00:00.000Z');
  const at = (ms: number) => new Date(t0 + ms).toISOString();
  const served = (personId: string, holdout: boolean, ms = 0): LoggedEvent => ({
    personId,
    name: 'decision.served',
    timestamp: at(ms),
    properties: {
      decisionId: `d-${personId}-${ms}`,
      holdout,
      experiment: DEFAULT_EXPERIMENT,
      eligible: true,
    },
  });
  const conversion = (personId: string, ms: number, name = 'order.completed'): LoggedEvent => ({
    personId,
    name,
    timestamp: at(ms),
  });

  it('compares the conversion rates of treated and held-out people', () => {
    const events: LoggedEvent[] = [];
    for (let i = 0; i < 100; i++) events.push(served(`t${i}`, false));
    for (let i = 0; i < 100; i++) events.push(served(`h${i}`, true));
    for (let i = 0; i < 20; i++) events.push(conversion(`t${i}`, day));
    for (let i = 0; i < 10; i++) events.push(conversion(`h${i}`, day, 'cart.item.added'));
    const report = measureLift(events, DEFAULT_EXPERIMENT);
    expect(report.treatment).toEqual({ people: 100, converters: 20, conversions: 20, rate: 0.2 });
    expect(report.holdout).toEqual({ people: 100, converters: 10, conversions: 10, rate: 0.1 });
    expect(report.lift).toBeCloseTo(1, 10);
  });

  it('attributes only conversions after a decision and within the window, or carrying its id', () => {
    const events = [
      served('a', false, day),
      conversion('a', 0), // before any decision
      conversion('a', day + 8 * day), // after the 7-day window
      served('b', false, 0),
      { ...conversion('b', 30 * day), properties: { decisionId: 'd-b-0' } }, // direct click-through
      served('c', true, 0),
      conversion('c', day),
    ];
    const report = measureLift(events, DEFAULT_EXPERIMENT);
    expect(report.treatment).toMatchObject({ people: 2, converters: 1 });
    expect(report.holdout).toMatchObject({ people: 1, converters: 1 });
  });

  it('reports no lift without treated people: a rate of nobody is not 0 %', () => {
    // HOLDOUT_PERCENT=100, or a window in which only held-out people were exposed: lift was
    // −100 % ("personalization loses every sale") when there was nothing to compare.
    const report = measureLift(
      [served('h1', true), served('h2', true), conversion('h1', day)],
      DEFAULT_EXPERIMENT,
    );
    expect(report.treatment).toMatchObject({ people: 0, converters: 0 });
    expect(report.holdout).toMatchObject({ people: 2, converters: 1, rate: 0.5 });
    expect(report.lift).toBeNull();
  });
});
