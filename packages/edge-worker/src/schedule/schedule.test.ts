/**
 * The five-minute cache check: a marketer's change in Directus whose notice never reached
 * the Worker (it was down, the Flow failed) still reaches the edge, through KV, without
 * every isolate reading Directus; a check that finds nothing new changes nothing. The
 * daily cron: retention, then every site's lift report, one failing not stopping the rest.
 */
import { createScheduledController } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { DEFAULT_CONSENT_CONFIG } from '@attune/shared-schema';
import { describe, expect, it, vi } from 'vitest';
import { FIXTURE_CATALOG } from '../catalog/fixtures/catalog.ts';
import {
  CATALOG_VERSION_KEY,
  getCatalog,
  invalidateCatalog,
  putCatalogSnapshot,
  reconcileCatalog,
} from '../catalog/index.ts';
import {
  CONSENT_CONFIG_VERSION_KEY,
  getConsentConfig,
  invalidateConsentConfig,
  reconcileConsentConfig,
} from '../config/consent-config.ts';
import worker from '../index.ts';
import { listSites } from '../sites/index.ts';
import { CACHE_CHECK_CRON, checkCaches, RETENTION_CRON } from './index.ts';

/** The fixture Directus; `token` picks what it holds (see src/proxy/fixtures/origin-worker.js). */
const directusWith = (token = 'test-directus-token') =>
  ({ ...env, DIRECTUS_URL: 'http://directus.fixture.test/', DIRECTUS_TOKEN: token }) as unknown as Env;

const productIds = async (bindings: Env) => (await getCatalog(bindings, 'demo')).products.map((p) => p.id);

/**
 * `bindings` whose KV, on the first read of `key`, lets a webhook's invalidation land right
 * after it (`notice`): a marketer's change delivered while a check is reading Directus.
 */
function noticeDuringCheck(bindings: Env, key: string, notice: () => Promise<string>): Env {
  let first = true;
  const kv = bindings.EDGE_CACHE;
  const racing = new Proxy(kv, {
    get(target, property) {
      if (property !== 'get') return Reflect.get(target, property, target);
      return async (name: string, ...rest: unknown[]) => {
        const value = await (target.get as (n: string, ...r: unknown[]) => Promise<unknown>)(name, ...rest);
        if (first && name === key) {
          first = false;
          await notice();
        }
        return value;
      };
    },
  });
  return { ...bindings, EDGE_CACHE: racing } as Env;
}

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

  it('names the site ids of rows saved for no site the Worker serves, which no one is shown', async () => {
    const warned: string[] = [];
    const spy = vi.spyOn(console, 'warn').mockImplementation((line: unknown) => {
      warned.push(String(line));
    });
    try {
      await checkCaches(directusWith());
    } finally {
      spy.mockRestore();
    }
    const found = warned.find((w) => w.includes('catalog.rows_for_no_site'));
    const line = found === undefined ? undefined : (JSON.parse(found) as Record<string, unknown>);
    expect(line).toMatchObject({ level: 'warn', rows: 1, siteIds: '"Demo"' });
    expect(String(line?.fix)).toContain('demo');
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

  it('does not put back what a notice delivered while it was reading Directus', async () => {
    const directus = directusWith();
    await putCatalogSnapshot(directus, FIXTURE_CATALOG);
    let delivered = '';
    const racing = noticeDuringCheck(directus, CATALOG_VERSION_KEY, async () => {
      delivered = await invalidateCatalog(directus);
      return delivered;
    });
    expect(await reconcileCatalog(racing)).toBe(false);
    expect(await env.EDGE_CACHE.get(CATALOG_VERSION_KEY)).toBe(delivered);

    const site = 'raced-site';
    const categories = directusWith('own-categories-directus-token');
    await reconcileConsentConfig(categories, [site]);
    const removed = directusWith('no-categories-directus-token');
    let generation = '';
    const raced = noticeDuringCheck(removed, CONSENT_CONFIG_VERSION_KEY, async () => {
      generation = await invalidateConsentConfig(removed);
      return generation;
    });
    // Before, the check published a generation of its own over the notice's.
    expect(await reconcileConsentConfig(raced, [site])).toEqual([]);
    expect(await env.EDGE_CACHE.get(CONSENT_CONFIG_VERSION_KEY)).toBe(generation);
    // The next check, with no notice racing it, sees the change (nothing was recorded as seen).
    expect(await reconcileConsentConfig(removed, [site])).toEqual([site]);
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
    // The daily cron runs retention and the lift reports, not the cache check.
    expect(await check('17 3 * * *')).toBe(FIXTURE_CATALOG.version);
    // A cron the Worker does not know runs nothing, and says so.
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    expect(await check('0 * * * *')).toBe(FIXTURE_CATALOG.version);
    expect(String(errors.mock.calls[0]?.[0])).toContain('no job for cron 0 * * * *');
    errors.mockRestore();
  });

  it("runs every site's lift report after retention, also when retention failed, and then fails", async () => {
    const directus = directusWith();
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    // The fixture Directus has no events collection: retention fails, and so does each report.
    await expect(
      worker.scheduled(
        createScheduledController({ scheduledTime: Date.now(), cron: RETENTION_CRON }),
        directus,
      ),
    ).rejects.toThrow(/daily jobs: \d+ failed/);
    const lines = errors.mock.calls.map(
      (call) => JSON.parse(String(call[0])) as { msg: string; siteId?: string },
    );
    errors.mockRestore();
    const sites = (await listSites(directus)).map((site) => site.id);
    expect(sites.length).toBeGreaterThan(0);
    expect(lines.map((line) => line.siteId ?? line.msg)).toEqual(['retention.failed', ...sites]);
    expect(lines.slice(1).every((line) => line.msg === 'lift.failed')).toBe(true);
  });
});
