import { createExecutionContext } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { DEFAULT_CONSENT_CONFIG, type DecideResponse } from '@attune/shared-schema';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { invalidateCatalog, putCatalogSnapshot } from '../catalog/index.ts';
import { invalidateConsentConfig } from '../config/consent-config.ts';
import { withCategoryDisabled } from '../config/test-support.ts';
import { decideSlots, prepareDecision } from './decide.ts';
import { anonymousIdInGroup, seedPerson, viewed } from './fixtures/people.ts';
import { CATALOG_WITH_TARGETED_PROMO, OUTDOOR_PROMO } from './fixtures/targeted-promo.ts';

const SITE_ORIGIN = 'http://localhost:3000';
/** The shop as the browser sees it through the edge proxy (an allowed origin of site `demo`). */
const SHOP = 'http://127.0.0.1:8787';
const decide = (query: string, headers: Record<string, string> = {}) =>
  exports.default.fetch(`http://attune.test/v1/decide?writeKey=pk_demo_attune&${query}`, {
    headers: { origin: SITE_ORIGIN, ...headers },
  });
/** The trail jacket's page through the edge proxy, for the person with id cookie `aid`. */
const jacketPage = async (aid: string, headers: Record<string, string> = {}) =>
  (
    await exports.default.fetch(`${SHOP}/products/trail-jacket`, {
      headers: { accept: 'text/html', cookie: `attune_aid=${aid}`, ...headers },
    })
  ).text();
const prepared = (anonymousId: string) =>
  prepareDecision(env, {
    siteId: 'demo',
    personKey: `anon:${anonymousId}`,
    anonymousId,
    slots: ['hero'],
    budgetMs: 2000,
  });

let fan: string;

beforeAll(async () => {
  await putCatalogSnapshot(env, CATALOG_WITH_TARGETED_PROMO);
  // Opted in to everything, under the categories the site offered then.
  fan = anonymousIdInGroup('opted-in-fan', false);
  await seedPerson(env, `anon:${fan}`, { analytics: true, personalization: true, marketing: true }, [
    viewed('hiking-boots', 'outdoor', ['boots', 'waterproof']),
    viewed('rain-shell', 'outdoor', ['jacket', 'waterproof']),
  ]);
});

describe('decisions under the site’s current consent categories', () => {
  it('personalize for a person who opted in while the categories are offered', async () => {
    const body = await (await decide(`slots=hero&anonymousId=${fan}`)).json<DecideResponse>();
    expect(body.personalized).toBe(true);
    expect((await prepared(fan)).ctx.analytics).toBe(true);
  });

  it('stop personalizing (route and edge proxy) once a marketer disables personalization', async () => {
    // A choice made under the current categories by a page that still offered personalization
    // (a cached page, an old tag): the category is off whatever the claim says.
    const claimant = anonymousIdInGroup('claims-personalization', false);
    await seedPerson(
      env,
      `anon:${claimant}`,
      { analytics: true, personalization: true, marketing: true, policyVersion: '1.no-personalization' },
      [viewed('hiking-boots', 'outdoor', ['boots', 'waterproof'])],
    );
    await withCategoryDisabled(env, 'demo', 'personalization', async () => {
      const body = await (await decide(`slots=hero,promo&anonymousId=${claimant}`)).json<DecideResponse>();
      expect(body.personalized).toBe(false);
      expect(body.decisions.hero).toMatchObject({
        variant: 'hero-default',
        reason: 'default: personalization not granted',
      });
      expect(body.decisions.promo?.variant).toBe('promo-default');
      // The proxied page keeps the origin's slots.
      const html = await jacketPage(claimant);
      expect(html).toContain('Origin hero');
      expect(html).not.toContain('data-attune-variant');
    });
  });

  it('log no decision.served for analytics a marketer disabled, even if a choice claims it', async () => {
    // A choice made under the current categories by a page that still offered analytics
    // (a cached page, an old tag): the category is off whatever the claim says.
    const claimant = anonymousIdInGroup('claims-analytics', false);
    await seedPerson(env, `anon:${claimant}`, {
      analytics: true,
      personalization: true,
      policyVersion: '1.no-analytics',
    });
    await withCategoryDisabled(env, 'demo', 'analytics', async () => {
      const { catalog, ctx } = await prepared(claimant);
      expect(ctx.analytics).toBe(false);
      expect(ctx.personalization).toBe(true);
      expect(decideSlots(catalog, ctx).served).toEqual([]);
    });
  });

  it('do not personalize (route and edge proxy) on a choice made under an earlier policy version, until the person chooses again', async () => {
    const returning = anonymousIdInGroup('earlier-policy', false);
    const grants = { analytics: true, personalization: true };
    await seedPerson(env, `anon:${returning}`, grants, [viewed('rain-shell', 'outdoor', ['jacket'])]);
    const generation = await invalidateConsentConfig(env);
    // The same categories under a new version: the site's policy changed, the SDK asks again.
    await env.EDGE_CACHE.put(
      `consent-config:${generation}:demo`,
      JSON.stringify({ ...DEFAULT_CONSENT_CONFIG, policyVersion: '2' }),
    );
    try {
      const before = await (await decide(`slots=hero&anonymousId=${returning}`)).json<DecideResponse>();
      expect(before.personalized).toBe(false);
      expect(before.decisions.hero?.reason).toBe('default: personalization not granted');
      expect((await prepared(returning)).ctx.analytics).toBe(false);
      expect(await jacketPage(returning)).not.toContain('data-attune-variant');

      // The same choice made again under the current version personalizes at once.
      await seedPerson(env, `anon:${returning}`, { ...grants, policyVersion: '2' });
      const after = await (await decide(`slots=hero&anonymousId=${returning}`)).json<DecideResponse>();
      expect(after.personalized).toBe(true);
      expect(after.decisions.hero?.variant).toBe('hero-outdoor');
    } finally {
      await invalidateConsentConfig(env);
    }
  });
});

describe('a promo targeted at the person', () => {
  it('is chosen under marketing consent, and not under Sec-GPC: 1 (route and edge proxy)', async () => {
    const targeted = await (await decide(`slots=promo&anonymousId=${fan}`)).json<DecideResponse>();
    expect(targeted.decisions.promo?.variant).toBe(OUTDOOR_PROMO.id);
    const gpc = await (
      await decide(`slots=promo&anonymousId=${fan}`, { 'sec-gpc': '1' })
    ).json<DecideResponse>();
    expect(gpc.decisions.promo).toMatchObject({
      variant: 'promo-default',
      reason: 'default: marketing not granted',
    });
    expect(await jacketPage(fan)).toContain(OUTDOOR_PROMO.title);
    const page = await jacketPage(fan, { 'sec-gpc': '1' });
    expect(page).not.toContain(OUTDOOR_PROMO.title);
    expect(page).toContain('data-attune-variant="promo-default"');
  });

  it('is not chosen for a person who did not grant marketing', async () => {
    const aid = anonymousIdInGroup('no-marketing', false);
    await seedPerson(env, `anon:${aid}`, { analytics: true, personalization: true }, [
      viewed('trail-jacket', 'outdoor', ['jacket']),
    ]);
    const body = await (await decide(`slots=hero,promo&anonymousId=${aid}`)).json<DecideResponse>();
    expect(body.decisions.hero?.variant).toBe('hero-outdoor');
    expect(body.decisions.promo?.variant).toBe('promo-default');
  });
});

describe('a decision while the catalog is slow to load', () => {
  afterEach(async () => {
    // Also makes the slow load, which is still running, unable to install what it finds.
    await putCatalogSnapshot(env, CATALOG_WITH_TARGETED_PROMO);
  });

  it('answers within its budget from the last catalog it held, not after Directus', async () => {
    // This isolate holds a catalog; then the webhook invalidates it, and Directus hangs
    // (the fixture Directus answers this token after 20 s; each read gives up after 5 s).
    expect((await (await decide('slots=hero')).json<DecideResponse>()).decisions.hero?.variant).toBe(
      'hero-default',
    );
    await invalidateCatalog(env);
    const slowDirectus = {
      ...env,
      DIRECTUS_URL: 'http://directus.fixture.test/',
      DIRECTUS_TOKEN: 'slow-directus-token',
      DECISION_BUDGET_MS: '100',
    };
    const ctx = createExecutionContext();
    const res = await createApp().fetch(
      new Request('http://attune.test/v1/decide?writeKey=pk_demo_attune&slots=hero,recommendations', {
        headers: { origin: SITE_ORIGIN },
      }),
      slowDirectus,
      ctx,
    );
    const body = await res.json<DecideResponse>();
    expect(res.status).toBe(200);
    expect(body.decisions.hero?.variant).toBe('hero-default');
    expect(body.decisions.recommendations?.items).toHaveLength(4);
  });
});
