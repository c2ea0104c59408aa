/**
 * The five-minute cache check: a marketer's change in Directus whose notice never reached
 * the Worker (it was down, the Flow failed) still reaches the edge, through KV, without
 * every isolate reading Directus; a check that finds nothing new changes nothing.
 */
import { createScheduledController } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { DEFAULT_CONSENT_CONFIG } from '@attune/shared-schema';
import { describe, expect, it } from 'vitest';
import { FIXTURE_CATALOG } from '../catalog/fixtures/catalog.ts';
import { CATALOG_VERSION_KEY, getCatalog, putCatalogSnapshot, reconcileCatalog } from '../catalog/index.ts';
import {
  CONSENT_CONFIG_VERSION_KEY,
  getConsentConfig,
  invalidateConsentConfig,
  reconcileConsentConfig,
} from '../config/consent-config.ts';
import worker from '../index.ts';
import { CACHE_CHECK_CRON } from './index.ts';

/** The fixture Directus; `token` picks what it holds (see src/proxy/fixtures/origin-worker.js). */
const directusWith = (token = 'test-directus-token') =>
  ({ ...env, DIRECTUS_URL: 'http://directus.fixture.test/', DIRECTUS_TOKEN: token }) as unknown as Env;

const productIds = async (bindings: Env) => (await getCatalog(bindings)).products.map((p) => p.id);

describe('the scheduled cache check', () => {
  it('publishes a catalog changed in Directus whose notice was lost, and only once', async () => {
    const directus = directusWith();
    // What the edge serves: a catalog from before the change (its webhook never arrived).
    await putCatalogSnapshot(directus, FIXTURE_CATALOG);
    expect(await productIds(directus)).toEqual(FIXTURE_CATALOG.products.map((p) => p.id));

    expect(await reconcileCatalog(directus)).toBe(true);
    const published = await env.EDGE_CACHE.get(CATALOG_VERSION_KEY);
    expect(published).not.toBe(FIXTURE_CATALOG.version);
    // Every isolate sees the new version in KV, and reads its snapshot from there.
    expect(await env.EDGE_CACHE.get(`catalog:snapshot:${published}`)).not.toBeNull();
    expect(await productIds(directus)).toEqual(['d-jacket', 'd-socks']);

    // Nothing changed since: nothing is published (isolates keep what they hold).
    expect(await reconcileCatalog(directus)).toBe(false);
    expect(await env.EDGE_CACHE.get(CATALOG_VERSION_KEY)).toBe(published);
  });

  it("publishes a site's consent categories changed in Directus whose notice was lost", async () => {
    const site = 'checked-site';
    const generation = await invalidateConsentConfig(env);
    // The edge holds the built-ins for the site, read before a marketer changed them.
    await env.EDGE_CACHE.put(`consent-config:${generation}:${site}`, JSON.stringify(DEFAULT_CONSENT_CONFIG));
    const changed = directusWith('own-categories-directus-token');
    expect(await getConsentConfig(changed, site)).toEqual(DEFAULT_CONSENT_CONFIG);

    expect(await reconcileConsentConfig(changed, [site])).toEqual([site]);
    expect(await env.EDGE_CACHE.get(CONSENT_CONFIG_VERSION_KEY)).not.toBe(generation);
    const served = await getConsentConfig(changed, site);
    expect(served.categories.find((c) => c.key === 'analytics')?.label).toBe('Shop statistics');
    expect(served.policyVersion).not.toBe(DEFAULT_CONSENT_CONFIG.policyVersion);

    // Unchanged since the last check: no new generation.
    const now = await env.EDGE_CACHE.get(CONSENT_CONFIG_VERSION_KEY);
    expect(await reconcileConsentConfig(changed, [site])).toEqual([]);
    expect(await env.EDGE_CACHE.get(CONSENT_CONFIG_VERSION_KEY)).toBe(now);

    // The marketer removes the site's own categories, and again no notice arrives.
    const removed = directusWith('no-categories-directus-token');
    expect(await reconcileConsentConfig(removed, [site])).toEqual([site]);
    expect(await getConsentConfig(removed, site)).toEqual(DEFAULT_CONSENT_CONFIG);
  });

  it("runs on the five-minute cron, and the daily cron's retention does not", async () => {
    const directus = directusWith();
    const check = async (cron: string) => {
      await putCatalogSnapshot(directus, FIXTURE_CATALOG);
      // Retention reads the fixture Directus, which has no events collection: it fails, as it may.
      await worker
        .scheduled(createScheduledController({ scheduledTime: Date.now(), cron }), directus)
        .catch(() => undefined);
      return env.EDGE_CACHE.get(CATALOG_VERSION_KEY);
    };
    expect(await check(CACHE_CHECK_CRON)).not.toBe(FIXTURE_CATALOG.version);
    // The daily cron runs retention only.
    expect(await check('17 3 * * *')).toBe(FIXTURE_CATALOG.version);
  });
});
