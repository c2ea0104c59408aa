/**
 * What a refresh indexes while a decision waits for it. After an invalidation (the webhook,
 * every edit a marketer saves) this isolate holds no catalog, and the next decision waits
 * for the refresh: it must not also wait for the indexes of every other site the isolate
 * served (each one a full build, ~60 ms on a bench-sized catalog, synchronous, so no budget
 * timer can cut it short). A refresh that revalidates, off the request, still indexes them ahead.
 */
import { env } from 'cloudflare:workers';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FIXTURE_CATALOG } from './fixtures/catalog.ts';
import {
  CATALOG_RECHECK_MS,
  CATALOG_VERSION_KEY,
  type CatalogEnv,
  type CatalogSnapshot,
  getCatalog,
  putCatalogSnapshot,
} from './index.ts';

const SITES = ['s0', 's1', 's2', 's3', 's4', 's5'];

/** The fixture catalog with every product owned by one of SITES: each site has an index of its own. */
const owned = (version: string): CatalogSnapshot => ({
  ...FIXTURE_CATALOG,
  version,
  products: FIXTURE_CATALOG.products.map((p, i) => ({ ...p, siteId: SITES[i % SITES.length] })),
});

/** How many site indexes were built from the snapshots KV served (each filters their products once). */
let builds = 0;

/** EDGE_CACHE, but a snapshot it serves counts the site indexes built from it. */
const counting: KVNamespace = {
  ...env.EDGE_CACHE,
  get: (async (key: string, type?: unknown) => {
    if (key === CATALOG_VERSION_KEY) return env.EDGE_CACHE.get(key);
    const stored = await env.EDGE_CACHE.get<CatalogSnapshot>(key, 'json');
    if (stored === null || type !== 'json') return stored;
    const products = [...stored.products];
    Object.defineProperty(products, 'filter', {
      value: (...args: Parameters<typeof products.filter>) => {
        builds++;
        return Array.prototype.filter.apply(products, args);
      },
    });
    return { ...stored, products };
  }) as KVNamespace['get'],
  put: (key, value, options) => env.EDGE_CACHE.put(key, value, options),
};
const countingEnv: CatalogEnv = { ...env, EDGE_CACHE: counting };

afterAll(async () => {
  await putCatalogSnapshot(env, FIXTURE_CATALOG);
});

describe('a catalog refresh', () => {
  it('that a decision waits for builds the asking site index only, not every site the isolate served', async () => {
    await putCatalogSnapshot(env, owned('cost-1'));
    for (const site of SITES) await getCatalog(countingEnv, site);
    // A new version published (as after the webhook): this isolate forgets what it held.
    await putCatalogSnapshot(env, owned('cost-2'));
    builds = 0;
    const index = await getCatalog(countingEnv, 's0', () => undefined);
    expect(index.version).toBe('cost-2');
    expect(builds).toBe(1);
    // Another site is indexed by its own first decision.
    await getCatalog(countingEnv, 's1');
    expect(builds).toBe(2);
  });

  it('that revalidates still indexes ahead, off the request, the sites served', async () => {
    // Held: s0 and s1 (the test above). Another isolate publishes cost-3 (only KV changes).
    await env.EDGE_CACHE.put('catalog:snapshot:cost-3', JSON.stringify(owned('cost-3')));
    await env.EDGE_CACHE.put(CATALOG_VERSION_KEY, 'cost-3');
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + CATALOG_RECHECK_MS + 1);
      builds = 0;
      const kept: Promise<unknown>[] = [];
      expect((await getCatalog(countingEnv, 's0', (p) => kept.push(p))).version).toBe('cost-2');
      await Promise.all(kept);
      expect(builds).toBe(2);
      expect((await getCatalog(countingEnv, 's1')).version).toBe('cost-3');
      expect(builds).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
