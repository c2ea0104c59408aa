import { describe, expect, it } from 'vitest';
import { allowsCollection, applyChoice, builtInConsentConfig, gate, parseConsentConfig } from './consent.ts';
import { googleConsentSignals } from './google-consent-mode.ts';
import { tcfCategories } from './tcf.ts';

const state = (categories: Record<string, boolean>) => ({ categories, policyVersion: '1' });

describe('gate', () => {
  it('holds events in memory before any choice', () => {
    expect(gate('track', undefined)).toBe('wait');
    expect(gate('page', undefined)).toBe('wait');
  });

  it('sends when any purpose that needs events is granted', () => {
    for (const purpose of ['analytics', 'personalization', 'marketing']) {
      expect(gate('track', state({ necessary: true, [purpose]: true }))).toBe('send');
    }
  });

  it('drops events when every purpose is refused (necessary alone needs no events)', () => {
    expect(gate('track', state({ necessary: true, analytics: false }))).toBe('drop');
    expect(gate('identify', state({ necessary: true, functional: true }))).toBe('drop');
  });

  it('always sends consent events: they are the proof of the choice, refusals included', () => {
    expect(gate('consent', state({ necessary: true, analytics: false }))).toBe('send');
  });

  it('allows storage exactly when collection is allowed', () => {
    expect(allowsCollection(undefined)).toBe(false);
    expect(allowsCollection(state({ necessary: true }))).toBe(false);
    expect(allowsCollection(state({ marketing: true }))).toBe(true);
  });
});

describe('applyChoice', () => {
  const config = builtInConsentConfig();

  it('keeps necessary on and unnamed categories as they were', () => {
    const first = applyChoice({}, { analytics: true }, config, false);
    expect(first).toEqual({ necessary: true, analytics: true, personalization: false, marketing: false });
    expect(applyChoice(first, { marketing: true, necessary: false }, config, false)).toEqual({
      necessary: true,
      analytics: true,
      personalization: false,
      marketing: true,
    });
  });

  it('never grants a disabled or unknown category', () => {
    const custom = {
      policyVersion: '2',
      categories: [
        ...config.categories.filter((c) => c.key !== 'marketing'),
        {
          key: 'marketing',
          label: 'Marketing',
          description: '',
          required: false,
          enabled: false,
          default: true,
        },
      ],
    };
    expect(applyChoice({}, { marketing: true, surveillance: true }, custom, false)).toEqual({
      necessary: true,
      analytics: false,
      personalization: false,
      marketing: false,
    });
  });

  it('turns marketing off under Global Privacy Control', () => {
    expect(applyChoice({}, { analytics: true, marketing: true }, config, true)).toMatchObject({
      analytics: true,
      marketing: false,
    });
  });
});

describe('parseConsentConfig', () => {
  it('accepts what /v1/config serves', () => {
    const config = { policyVersion: '3', categories: builtInConsentConfig().categories };
    expect(parseConsentConfig(config)).toEqual(config);
  });
  it('rejects malformed answers', () => {
    for (const bad of [
      null,
      'x',
      {},
      { policyVersion: 3, categories: [] },
      { policyVersion: '3', categories: [{}] },
    ]) {
      expect(parseConsentConfig(bad)).toBeUndefined();
    }
  });
  it('cannot be tricked into granting with odd flags', () => {
    const config = parseConsentConfig({
      policyVersion: '3',
      categories: [{ key: 'analytics', required: 'yes', enabled: 1 }],
    });
    expect(config && applyChoice({}, {}, config, false)).toEqual({ analytics: false });
  });
});

describe('Google Consent Mode v2 signals', () => {
  it('maps Attune categories to consent types', () => {
    expect(googleConsentSignals({ analytics: true, personalization: false, marketing: true })).toEqual({
      ad_storage: 'granted',
      ad_user_data: 'granted',
      ad_personalization: 'granted',
      analytics_storage: 'granted',
      personalization_storage: 'denied',
    });
  });
});

describe('IAB TCF v2.2 mapping', () => {
  const consents = (...ids: number[]) => Object.fromEntries(ids.map((id) => [id, true]));
  it('needs purpose 1 plus each category’s purposes', () => {
    expect(tcfCategories({ gdprApplies: true, purpose: { consents: consents(1, 8, 5) } })).toEqual({
      analytics: true,
      personalization: false,
      marketing: false,
    });
    expect(tcfCategories({ gdprApplies: true, purpose: { consents: consents(8, 5, 6, 3, 4) } })).toEqual({
      analytics: false,
      personalization: false,
      marketing: false,
    });
    expect(tcfCategories({ gdprApplies: true, purpose: { consents: consents(1, 3, 4, 5, 6) } })).toEqual({
      analytics: false,
      personalization: true,
      marketing: true,
    });
  });
  it('grants every purpose where GDPR does not apply', () => {
    expect(tcfCategories({ gdprApplies: false })).toEqual({
      analytics: true,
      personalization: true,
      marketing: true,
    });
  });
});
