/**
 * The consent model: defaults, Global Privacy Control, normalizing a (possibly forged)
 * choice against what a site offers, which sinks a state opens, and re-consent on a
 * policy change. The browser and the Worker decide with these same functions.
 */
import { describe, expect, it } from 'vitest';
import {
  applyGpc,
  type ConsentConfig,
  ConsentConfigSchema,
  claimedCategories,
  DEFAULT_CONSENT_CONFIG,
  defaultConsent,
  grantedSinks,
  isGranted,
  MAX_CLAIMED_CATEGORIES,
  needsReconsent,
  normalizeConsent,
} from './consent.ts';
import type { ConsentState } from './constants.ts';

const all: ConsentState = {
  categories: { necessary: true, analytics: true, personalization: true, marketing: true },
  policyVersion: '1',
};

describe('defaultConsent', () => {
  it('grants only what is strictly necessary', () => {
    expect(defaultConsent()).toEqual({
      categories: { necessary: true, analytics: false, personalization: false, marketing: false },
      policyVersion: '1',
    });
    expect(defaultConsent('2026-11').policyVersion).toBe('2026-11');
    expect(grantedSinks(defaultConsent())).toEqual([]);
  });

  it('returns a fresh object each time, so one person cannot change another default', () => {
    const a = defaultConsent();
    a.categories.marketing = true;
    expect(defaultConsent().categories.marketing).toBe(false);
  });
});

describe('applyGpc', () => {
  it('turns marketing off under Global Privacy Control and leaves the other purposes alone', () => {
    const result = applyGpc(all, true);
    expect(result.categories).toEqual({
      necessary: true,
      analytics: true,
      personalization: true,
      marketing: false,
    });
    expect(result.policyVersion).toBe('1');
    expect(all.categories.marketing).toBe(true); // the input is not mutated
  });

  it('changes nothing without the signal, or when marketing is not granted', () => {
    expect(applyGpc(all, false)).toBe(all);
    const noMarketing = { ...all, categories: { ...all.categories, marketing: false } };
    expect(applyGpc(noMarketing, true)).toBe(noMarketing);
  });
});

describe('normalizeConsent', () => {
  const config: ConsentConfig = {
    policyVersion: '2026-11',
    categories: [
      ...DEFAULT_CONSENT_CONFIG.categories.map((c) => (c.key === 'marketing' ? { ...c, enabled: false } : c)),
      {
        key: 'ab_testing',
        label: 'Experiments',
        description: 'A/B tests',
        required: false,
        enabled: true,
        default: false,
      },
    ],
  };

  it('keeps required categories on, even when the choice says off', () => {
    const result = normalizeConsent({ categories: { necessary: false }, policyVersion: '1' }, config);
    expect(result.categories.necessary).toBe(true);
  });

  it('grants a disabled category never, and drops categories the site does not offer', () => {
    const forged = {
      categories: { ...all.categories, superuser: true, ab_testing: true },
      policyVersion: '1',
    };
    expect(normalizeConsent(forged, config)).toEqual({
      categories: {
        necessary: true,
        analytics: true,
        personalization: true,
        marketing: false,
        ab_testing: true,
      },
      policyVersion: '1',
    });
  });

  it('treats anything but true as not granted', () => {
    const sloppy = { categories: { analytics: 'yes', personalization: 1 } } as unknown as ConsentState;
    const result = normalizeConsent({ ...sloppy, policyVersion: '1' }, DEFAULT_CONSENT_CONFIG);
    expect(result.categories).toEqual({
      necessary: true,
      analytics: false,
      personalization: false,
      marketing: false,
    });
  });
});

describe('claimedCategories', () => {
  it('keeps the answers as given, whatever the site offers now: a removed category, a refused required one', () => {
    const answers = { necessary: false, analytics: true, experiments: true, marketing: false };
    expect(claimedCategories(answers)).toEqual(answers);
  });

  it('keeps only yes/no answers under keys a category can have, and at most MAX_CLAIMED_CATEGORIES', () => {
    const sent = JSON.parse(
      '{"__proto__": true, "Analytics": true, "": true, "a b": true, "ads": "yes", "news": false}',
    );
    expect(claimedCategories(sent)).toEqual({ news: false });
    const many: Record<string, boolean> = {};
    for (let i = 0; i < 1000; i++) many[`c${i}`] = true;
    const kept = claimedCategories(many);
    expect(Object.keys(kept)).toHaveLength(MAX_CLAIMED_CATEGORIES);
    expect(kept.c0).toBe(true);
  });
});

describe('grantedSinks and isGranted', () => {
  it('opens each sink only for its purpose', () => {
    const only = (purpose: string): ConsentState => ({
      categories: { necessary: true, [purpose]: true },
      policyVersion: '1',
    });
    expect(grantedSinks(undefined)).toEqual([]);
    expect(grantedSinks(only('analytics'))).toEqual(['eventLog']);
    expect(grantedSinks(only('personalization'))).toEqual(['profile', 'decisions']);
    expect(grantedSinks(only('marketing'))).toEqual(['promotions']);
    expect(grantedSinks(all)).toEqual(['eventLog', 'profile', 'decisions', 'promotions']);
    expect(grantedSinks(applyGpc(all, true))).toEqual(['eventLog', 'profile', 'decisions']);
    expect(isGranted(all, 'marketing')).toBe(true);
    expect(isGranted(undefined, 'analytics')).toBe(false);
  });
});

describe('needsReconsent', () => {
  it('asks again when there is no choice or it was made under another policy', () => {
    expect(needsReconsent(undefined, '1')).toBe(true);
    expect(needsReconsent(all, '1')).toBe(false);
    expect(needsReconsent(all, '2026-11')).toBe(true);
  });
});

describe('ConsentConfigSchema', () => {
  it('accepts the default configuration and rejects malformed category keys', () => {
    expect(ConsentConfigSchema.safeParse(DEFAULT_CONSENT_CONFIG).success).toBe(true);
    const bad = {
      ...DEFAULT_CONSENT_CONFIG,
      categories: [{ ...DEFAULT_CONSENT_CONFIG.categories[0], key: 'Ads!' }],
    };
    const result = ConsentConfigSchema.safeParse(bad);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe('expected a lower-case key like "analytics"');
  });
});
